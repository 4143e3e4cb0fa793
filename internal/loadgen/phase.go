package loadgen

import (
	"context"
	"runtime/pprof"
)

// inPhase labels the calling goroutine, and the goroutines it starts from
// then on, with the phase of the run ("raw", "push8", "pull", "sync",
// "push64"), so that a CPU profile of the generator (fieldsync bench
// --cpuprofile) can be cut by phase: go tool pprof -tagfocus phase=sync.
func inPhase(ctx context.Context, name string) context.Context {
	ctx = pprof.WithLabels(ctx, pprof.Labels("phase", name))
	pprof.SetGoroutineLabels(ctx)
	return ctx
}
