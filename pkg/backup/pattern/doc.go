// Package pattern owns include/exclude patterns in BorgBackup's styles:
// sh: (shell style with **, the default here), fm: (fnmatch), re:
// (regular expression search), pp: (path prefix) and pf: (full path), and
// borg's pattern files (--patterns-from) whose lines start with a command
// character: + (include), - (exclude), ! (exclude without descending),
// P (change the default style) or R (a root path to back up). Paths are
// matched without their leading slash, like borg's archive paths; the
// first matching rule decides.
//
// As in borg, a pattern whose first two characters are letters or digits
// followed by ':' names its style, and an unknown style is an error. A
// pattern file's R paths are returned by LoadFile in File.Roots; adding
// them to the paths to back up is the caller's job.
//
// It does not walk directories; package archiver consults it.
package pattern
