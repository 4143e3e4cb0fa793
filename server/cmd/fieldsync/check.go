package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"runtime/debug"

	"github.com/fieldsync/fieldsync/internal/store"
)

// check verifies a database offline (the server must not be running on it).
func check(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", "./data", "data directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	st, err := store.Open(*data, store.Options{})
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.Check(ctx); err != nil {
		return fmt.Errorf("check %s: %w", st.Path(), err)
	}
	fmt.Fprintf(stdout, "%s: ok\n", st.Path())
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
