// Package devicecli is `fieldsync device ...`: a scriptable tablet on the
// command line, for demos and for people testing a server. It keeps the
// device's records in DIR/device.db through the tablet SDK
// (syncproto/client) and its enrollment (server URL, device id, token) in
// DIR/device.json, mode 0600. The token is never printed nor logged.
//
// Every command prints its result on stdout (--json where it makes sense)
// and returns an error that says what went wrong; the caller prints it and
// exits 1.
package devicecli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// DefaultDir is where the device keeps its files unless --dir or
// FIELDSYNC_DEVICE_DIR says otherwise.
const DefaultDir = "./tablet"

// EnvDir and EnvToken are read as defaults of --dir and of enroll's --token
// (a token in the environment stays out of the shell's history).
const (
	EnvDir   = "FIELDSYNC_DEVICE_DIR"
	EnvToken = "FIELDSYNC_DEVICE_TOKEN"
)

const usage = `usage: fieldsync device COMMAND [flags] [args]

A scriptable tablet for demos and server tests. It keeps its records in
DIR/device.db (the tablet SDK) and its enrollment in DIR/device.json
(mode 0600: it holds the token, which is never printed).

commands:
  enroll --server URL --device ID --token TOKEN [--app-version V]
                               save the enrollment after checking it with the server
  new --form F [--scope S] FIELD=VALUE ...
                               create a record on the device; prints its id
  set ID FIELD=VALUE ...       edit a record (an edit of a deleted record undeletes it)
  delete ID                    delete a record (a tombstone that syncs)
  show ID [--json]             values, conflicts with their siblings, review, dirty fields
  list [--conflicts] [--json]  one line a record: id, form, scope, flags, summary
  sync [--json] [--retries N] [--timeout D] [-v]
                               push this device's changes, then pull the server's
  status [--json]              server, device, records, dirty records, pending batch
  help [COMMAND]               this text, or one command's flags

Every command takes --dir DIR (default ./tablet, or $FIELDSYNC_DEVICE_DIR).
Only enroll and sync talk to the server; the others work offline.

values:
  name=VALUE    VALUE as JSON when it is valid JSON (5, -2.5, true, null, "text",
                [1,2], {"a":1}), else as a plain string: head_name=فاطمة
  name:=JSON    JSON only: an error when it is not valid JSON
  name=null     clears the field
  A string that reads as JSON needs JSON quotes: code='"0042"' is the string
  "0042", code=42 the number 42 (0042 is not valid JSON, so code=0042 is a string).

ID is a record's id or a prefix of it that only one record has.

list flags: conflict (a hard or delete/edit conflict), deleted, dirty (changed
since the last acknowledged push), review:STATE (a supervisor's review).

Exit status: 0 on success, 1 on any error (the message says what to do).
`

// command is one subcommand: a one-line synopsis for its help, and setup,
// which registers its flags on fs and returns the function that runs it
// with the positional arguments.
type command struct {
	synopsis string
	setup    func(fs *flag.FlagSet, e *env) func(ctx context.Context, args []string) error
}

var commands = map[string]command{
	"enroll": {"enroll --server URL --device ID --token TOKEN [--app-version V] [--encoding zstd|gzip|none]\n\n" +
		"Checks that the server answers /healthz and that GET /v1/whoami knows the token as this\n" +
		"device's, then saves the enrollment in DIR/device.json (mode 0600) and prints the\n" +
		"device's label and scopes. --device may be left out: whoami says it. The token may\n" +
		"come from $" + EnvToken + " instead of --token.", setupEnroll},
	"new": {"new --form F [--scope S] [--id UUID] FIELD=VALUE ...\n\n" +
		"Creates a record on the device and prints its id. --scope may be left out when the\n" +
		"device has one scope.", setupNew},
	"set":    {"set ID FIELD=VALUE ...\n\nEdits fields of a record; an edit of a deleted record undeletes it.", setupSet},
	"delete": {"delete ID\n\nDeletes a record: it stays as a tombstone and syncs.", setupDelete},
	"show": {"show ID [--json]\n\nShows a record: visible values, conflicts with their siblings (value, by, at),\n" +
		"deleted, review (state, note, by), dirty fields.", setupShow},
	"list": {"list [--conflicts] [--json]\n\nOne line a record: id, form, scope, flags, a short summary of its values.", setupList},
	"sync": {"sync [--json] [--retries N] [--timeout D] [-v]\n\n" +
		"Pushes the device's changes, then pulls the server's, and prints what it did.\n" +
		"Exit status 1 when the sync failed; nothing unsent is lost, the next sync carries on.", setupSync},
	"status": {"status [--json]\n\nShows the server, the device, its records, dirty records and pending batch.", setupStatus},
}

// env is what every command shares: the output streams and --dir.
type env struct {
	stdout, stderr io.Writer
	dir            string
}

// Run runs `fieldsync device ARGS...`. It returns nil on success and an
// error that says what went wrong (already prefixed with the command) on
// failure.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("device: a command is required (see fieldsync device help)")
	}
	name := args[0]
	switch name {
	case "help", "-h", "-help", "--help":
		if len(args) > 1 {
			return commandHelp(args[1], stdout)
		}
		fmt.Fprint(stdout, usage)
		return nil
	}
	cmd, ok := commands[name]
	if !ok {
		return fmt.Errorf("device: unknown command %q: use one of %s (see fieldsync device help)", name, strings.Join(commandNames(), ", "))
	}
	e := &env{stdout: stdout, stderr: stderr}
	fs := newFlagSet(name, e)
	runCmd := cmd.setup(fs, e)
	pos, err := parseInterspersed(fs, args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return commandHelp(name, stdout)
	}
	if err != nil {
		return fmt.Errorf("device %s: %v (see fieldsync device help %s)", name, err, name)
	}
	if e.dir == "" {
		return fmt.Errorf("device %s: --dir is empty", name)
	}
	if err := runCmd(ctx, pos); err != nil {
		return fmt.Errorf("device %s: %w", name, err)
	}
	return nil
}

func newFlagSet(name string, e *env) *flag.FlagSet {
	fs := flag.NewFlagSet("fieldsync device "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	def := os.Getenv(EnvDir)
	if def == "" {
		def = DefaultDir
	}
	fs.StringVar(&e.dir, "dir", def, "the device's directory: device.json and device.db (env "+EnvDir+")")
	return fs
}

func commandHelp(name string, w io.Writer) error {
	cmd, ok := commands[name]
	if !ok {
		return fmt.Errorf("device help: unknown command %q: use one of %s", name, strings.Join(commandNames(), ", "))
	}
	e := &env{}
	fs := newFlagSet(name, e)
	cmd.setup(fs, e)
	fmt.Fprintf(w, "usage: fieldsync device %s\n\nflags:\n", cmd.synopsis)
	fs.SetOutput(w)
	fs.PrintDefaults()
	return nil
}

func commandNames() []string {
	out := make([]string, 0, len(commands))
	for n := range commands {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// parseInterspersed parses flags wherever they stand among the positional
// arguments (`set ID a=1 --dir x` as well as `set --dir x ID a=1`); after
// "--" everything is positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// noArgs complains about positional arguments a command does not take.
func noArgs(args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("unexpected arguments %q", args)
	}
	return nil
}
