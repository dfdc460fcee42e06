// Package backuptest holds fixtures for tests of the backup engine and of
// code built on it: a source tree with every kind of file the engine must
// restore exactly, a comparison of two trees, and fast repository
// settings.
package backuptest
