// Package containers is hostd's Docker auto-pruner: the "containers"
// service, replacing a timer that runs `docker system prune -f` weekly.
//
// It owns:
//   - the scheduled prune (systemd OnCalendar schedule with randomized
//     delay and catch-up of missed runs): stopped containers, unused
//     networks, dangling or all unused images, build cache and, when
//     enabled, unused volumes, each with Docker's until and label filters,
//     and keep_labels protecting anything labelled so;
//   - disk-pressure mode: above a high watermark on the filesystem holding
//     Docker's root dir it removes unused images least recently used first
//     until below the low watermark, never an image a container uses, one
//     matching a keep pattern or one used within min_age;
//   - the last-use record of every image, learned from the engine's event
//     stream and container history and kept in the state dir across
//     restarts;
//   - the local API (GET /v1/containers/status, POST /v1/containers/prune)
//     and its wire types, used by `hostd containers`.
//
// It talks to the Docker Engine API with github.com/moby/moby/client and
// API version negotiation (engines with API 1.40 and later, including
// Debian's docker.io 20.10 with API 1.41). It plans every prune itself from
// listings, the way the engine's prune endpoints select, so a dry run
// lists exactly what a real run removes; objects are then removed one by
// one without force, and one found in use or gone is skipped.
//
// It does not start, stop or configure the Docker daemon, pull or build
// images, or prune swarm objects.
package containers
