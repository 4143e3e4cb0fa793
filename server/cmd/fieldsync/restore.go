package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/fieldsync/fieldsync/internal/store"
)

// restore puts a backup (from GET /v1/admin/backup) in place. Cursors that
// tablets got after the backup are answered 410 afterwards, so they resync
// and push back what the server lost (PROTOCOL.md §3).
func restore(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("restore", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", "./data", "data directory to restore into")
	from := fs.String("from", "", "backup file to restore")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *from == "" {
		return fmt.Errorf("restore: --from BACKUP is required")
	}
	kept, err := store.Restore(ctx, *data, *from)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	fmt.Fprintf(stdout, "restored %s into %s\n", *from, *data)
	if kept != "" {
		fmt.Fprintf(stdout, "the previous database is kept as %s\n", kept)
	}
	return nil
}
