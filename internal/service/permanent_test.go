package service_test

import (
	"errors"
	"fmt"
	"io/fs"
	"testing"

	"github.com/thejerf/suture/v4"

	"github.com/hostd/hostd/internal/service"
)

func TestPermanent(t *testing.T) {
	cause := fmt.Errorf("create instance: %w", fs.ErrInvalid)
	err := service.Permanent(cause)
	if !service.IsPermanent(err) || !errors.Is(err, suture.ErrDoNotRestart) {
		t.Errorf("Permanent(%v) does not say do-not-restart", cause)
	}
	if !errors.Is(err, fs.ErrInvalid) || err.Error() != cause.Error() {
		t.Errorf("Permanent(%v) = %q, want the cause's text and chain", cause, err)
	}
	if wrapped := fmt.Errorf("start: %w", err); !service.IsPermanent(wrapped) {
		t.Errorf("IsPermanent(%v) = false through a wrap", wrapped)
	}
	if service.IsPermanent(cause) || service.IsPermanent(nil) {
		t.Error("IsPermanent is true for an ordinary error or nil")
	}
	if service.Permanent(nil) != nil {
		t.Error("Permanent(nil) is not nil")
	}
	if !service.IsPermanent(fmt.Errorf("bad config: %w", suture.ErrDoNotRestart)) {
		t.Error("IsPermanent misses an error wrapping suture.ErrDoNotRestart")
	}
}
