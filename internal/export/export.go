// Package export encodes HQ's merged dataset (PROTOCOL.md §5) as JSON Lines
// or CSV, one record at a time, over a snapshot that internal/records
// reads: memory does not grow with the dataset.
package export

import (
	"github.com/fieldsync/fieldsync/internal/records"
)

// Formats.
const (
	FormatJSONL = "jsonl"
	FormatCSV   = "csv"
)

// Options shape an export's encoding.
type Options struct {
	// BOM starts a CSV file with a UTF-8 byte order mark, for spreadsheets
	// that need one to read Arabic text.
	BOM bool
	// ReviewColumn adds a "_review" column (the review state) to a CSV,
	// after "conflict". Off by default, so the header is exactly
	// PROTOCOL.md's.
	ReviewColumn bool
	// OnStart is called once with the snapshot before the first byte is
	// written: the HTTP layer sets its headers there.
	OnStart func(records.ExportSnapshot)
}

// Compile-time checks.
var (
	_ records.ExportWriter = (*JSONL)(nil)
	_ records.ExportWriter = (*CSV)(nil)
)
