package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/fieldsync/fieldsync/internal/demo"
)

// runDemo tells the scripted field story (make demo) with this binary as
// the server.
func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("demo: find own binary: %w", err)
	}
	return demo.Run(ctx, stdout, self)
}
