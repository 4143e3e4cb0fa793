package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"

	"github.com/fieldsync/fieldsync/internal/loadgen"
)

// bench is `fieldsync bench`: it starts this binary's server on loopback
// over a temporary data directory, measures it over HTTP (internal/loadgen),
// prints a table and writes the figures as JSON.
func bench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `usage: fieldsync bench [--out bench.json] [--quick] [--records 100000] [--binary PATH] [--server-flag=--flag=value ...] [--cpuprofile FILE]

Starts the server (this binary unless --binary) on 127.0.0.1 with a fresh
temporary data directory and measures, over HTTP, with ~1 KB assessments:
durable push from 8 and 64 devices, full pull with and without compression,
many devices syncing at once, the server's peak memory, and the raw limit
of this machine for the same bytes. Prints a table, writes JSON.

`)
		fs.PrintDefaults()
	}
	out := fs.String("out", "bench.json", "write the results as JSON to this file (\"\" for none)")
	quick := fs.Bool("quick", false, "a fast smoke run: 10,000 records and 100 devices at once")
	records := fs.Int("records", loadgen.DefaultRecords, "records ingested and then pulled (--quick: 10,000 unless given)")
	binary := fs.String("binary", "", "the fieldsync binary to serve (default: this executable)")
	devices := fs.Int("devices", loadgen.DefaultSyncDevices, "devices syncing at once (--quick: 100 unless given)")
	timeout := fs.Duration("timeout", loadgen.DefaultTimeout, "give up after this long")
	tmp := fs.String("tmp", "", "directory for the temporary data (default: the system's temp dir)")
	cpuprofile := fs.String("cpuprofile", "", "write the load generator's own CPU profile to this file (the server's: --server-flag=--debug-addr=...)")
	var serverArgs serverFlags
	fs.Var(&serverArgs, "server-flag", "a flag for the server, repeatable (e.g. --server-flag=--debug-addr=127.0.0.1:6060 to profile it with go tool pprof)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("bench: unexpected arguments %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	cfg := loadgen.Config{Quick: *quick, Timeout: *timeout, TempDir: *tmp, Progress: stderr, BinaryPath: *binary, ServerArgs: serverArgs}
	if set["records"] || !*quick {
		cfg.Records = *records
	}
	if set["devices"] || !*quick {
		cfg.SyncDevices = *devices
	}
	if *records < 1 || *devices < 2 {
		return fmt.Errorf("bench: --records %d, --devices %d: want at least 1 record and 2 devices", *records, *devices)
	}
	if cfg.BinaryPath == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("bench: finding this executable: %w (give --binary)", err)
		}
		cfg.BinaryPath = exe
	}

	// Ctrl-C or SIGTERM ends the run; Run then stops the server and removes
	// its data before returning.
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return fmt.Errorf("bench: %w", err)
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}
	rep, err := loadgen.Run(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout)
	if err := rep.WriteTable(stdout); err != nil {
		return err
	}
	if *out == "" {
		return nil
	}
	f, err := os.Create(*out)
	if err != nil {
		return err
	}
	if err := rep.WriteJSON(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "results written to %s\n", *out)
	return nil
}

// serverFlags collects --server-flag values.
type serverFlags []string

func (f *serverFlags) String() string { return fmt.Sprint(*f) }

func (f *serverFlags) Set(v string) error {
	if !strings.HasPrefix(v, "-") {
		return fmt.Errorf("%q is not a flag (write --server-flag=--name=value)", v)
	}
	*f = append(*f, v)
	return nil
}
