package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"runtime/debug"

	"github.com/fieldsync/fieldsync/internal/store"
)

// check verifies a database offline (the server must not be running on
// it), read-only.
func check(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", "./data", "data directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	// Read-only: a check neither creates a missing database nor upgrades
	// an older one.
	path := filepath.Join(*data, store.FileName)
	if err := store.VerifyFile(ctx, path); err != nil {
		return fmt.Errorf("check: %w", err)
	}
	fmt.Fprintf(stdout, "%s: ok\n", path)
	return nil
}

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return "fieldsync " + s.Value
			}
		}
		return "fieldsync " + bi.Main.Version
	}
	return "fieldsync (unknown version)"
}
