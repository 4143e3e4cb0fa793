package server

import (
	"context"

	sp "github.com/fieldsync/fieldsync/syncproto"
)

// largeBodySlots is how many push bodies larger than one chunk (1 MiB,
// inflated) may be read and decoded at once. Each may grow to 32 MiB plus
// its decoded items, so this bounds the memory that a burst of 32 MiB
// batches or of decompression bombs can take. Smaller pushes, the usual
// tablet batch, need no slot: hundreds of them proceed together and share
// commits.
const largeBodySlots = 3

var errBusy = sp.Errorf(sp.CodeUnavailable, "request cancelled while waiting to read a large push")

// bodyBudget is one request's claim on a large-body slot, taken only when
// its body grows past the first chunk, and given back when the request ends.
// A request waiting for a slot holds at most one chunk.
type bodyBudget struct {
	slots chan struct{}
	ctx   context.Context
	held  bool
}

func newBodyBudget(slots chan struct{}, ctx context.Context) *bodyBudget {
	return &bodyBudget{slots: slots, ctx: ctx}
}

// grow is called before a body reads past its first chunk: it waits for a
// large-body slot. It returns errBusy if the request ends first.
func (b *bodyBudget) grow() error {
	if b == nil || b.held {
		return nil
	}
	select {
	case b.slots <- struct{}{}:
		b.held = true
		return nil
	case <-b.ctx.Done():
		return errBusy
	}
}

// release gives the slot back, if one was taken.
func (b *bodyBudget) release() {
	if b != nil && b.held {
		<-b.slots
		b.held = false
	}
}
