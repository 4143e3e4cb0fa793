package main

import (
	"context"
	"io"

	"github.com/fieldsync/fieldsync/internal/devicecli"
)

// device is `fieldsync device ...`: a scriptable tablet for demos and
// server tests (internal/devicecli).
func device(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return devicecli.Run(ctx, args, stdout, stderr)
}
