// Command fieldsync is the fieldsync server.
//
//	fieldsync serve --addr 127.0.0.1:8080 --data ./data
//	fieldsync check --data ./data
//
// See README.md and PROTOCOL.md.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "fieldsync:", err)
		os.Exit(1)
	}
}

const usage = `fieldsync: offline-first sync server for field data collection

usage:
  fieldsync serve [--addr 127.0.0.1:8080] [--data ./data] [--log-format text|json] [--log-level info]
  fieldsync check [--data ./data]
  fieldsync restore --data ./data --from BACKUP.db   (server stopped; the old database is kept beside it)
  fieldsync bench [--quick] [--records 100000] [--out bench.json]   (load generator against a fresh server)
  fieldsync demo                                      (a scripted field story on a temporary server)
  fieldsync device help                               (a scriptable test tablet: enroll, new, set, sync, list, show)
  fieldsync version

Environment:
  FIELDSYNC_ADMIN_TOKEN  the first admin's token, used once when the database is new
                         (otherwise a token is generated and written to DATA/admin.token)
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("a command is required")
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stdout, stderr)
	case "bench":
		return bench(ctx, args[1:], stdout, stderr)
	case "check":
		return check(ctx, args[1:], stdout, stderr)
	case "restore":
		return restore(ctx, args[1:], stdout, stderr)
	case "demo":
		return runDemo(ctx, args[1:], stdout, stderr)
	case "device":
		return device(ctx, args[1:], stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, version())
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", args[0])
	}
}
