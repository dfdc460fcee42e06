// Package forget owns the retention rule that decides which snapshots to
// keep. It is restic's rule, exactly:
//
// Snapshots are grouped by hostname and paths (or as a GroupBy says);
// each group is considered newest first. Every keep-* option is a bucket with a counter. For
// last, a snapshot's bucket value is its position; for hourly, daily,
// weekly, monthly and yearly it is the snapshot's hour, day, ISO week,
// month or year in the given time zone. A snapshot is kept when, for some
// bucket whose counter is not exhausted, its value differs from the value
// of the last snapshot that bucket kept; each keep decrements that
// bucket's counter. So keep-daily 7 keeps the newest snapshot of each of
// the 7 most recent days that have snapshots (not of the last 7 calendar
// days). keep-within D additionally keeps every snapshot not older than
// D before the group's newest snapshot, and Tags every snapshot with the
// tags of one of its lists. A count of -1 means unlimited.
//
// It does not touch the repository; the caller removes what it returns.
package forget
