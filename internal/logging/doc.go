// Package logging builds hostd's slog logger: key=value lines for the
// journal, JSON on request, and compact human text on a terminal. Every
// line of a service carries service=<name>.
package logging
