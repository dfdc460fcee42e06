// Package pattern owns include/exclude patterns in BorgBackup's styles:
// sh: (shell style with **, the default here), fm: (fnmatch), re:
// (regular expression search), pp: (path prefix) and pf: (full path), and
// borg's pattern files whose lines start with + (include), - (exclude) or
// ! (exclude without descending), plus "P style" to change the default.
// Paths are matched without their leading slash, like borg's archive
// paths; the first matching rule decides.
//
// It does not walk directories; package archiver consults it.
package pattern
