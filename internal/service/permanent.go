package service

import (
	"errors"

	"github.com/thejerf/suture/v4"
)

// Permanent marks err as a failure a restart cannot fix, such as a
// configuration problem: when Serve returns it, the supervisor stops the
// service for good instead of restarting it. The error reads as err does
// and still matches err with errors.Is and errors.As. Permanent(nil) is
// nil.
//
// It is how a service says "do not restart" without importing the
// supervisor's library (suture.ErrDoNotRestart, which it wraps).
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// IsPermanent reports whether err (or an error it wraps) is one a restart
// cannot fix: made by Permanent, or wrapping suture.ErrDoNotRestart.
func IsPermanent(err error) bool { return errors.Is(err, suture.ErrDoNotRestart) }

type permanentError struct{ err error }

func (e permanentError) Error() string   { return e.err.Error() }
func (e permanentError) Unwrap() []error { return []error{e.err, suture.ErrDoNotRestart} }
