package syncproto

// Limits of PROTOCOL.md §7.
const (
	MaxBodyBytes   = 32 << 20 // a request body, after decompression
	MaxBatchItems  = 2000     // items in one push
	MaxFields      = 512      // distinct fields in a merged record
	MaxValueBytes  = 64 << 10 // one value's JSON encoding
	MaxActors      = 256      // entries in one clock
	MaxNameLen     = 128      // a field name
	MaxValueDepth  = 64       // nesting of arrays and objects in one value
	DefaultPull    = 500      // records per pull page when no limit is given
	MaxPull        = 1000     // the largest pull limit
	MaxFormOrScope = 64       // length of a form or scope name
)
