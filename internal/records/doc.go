// Package records is fieldsync's record service: it applies pushes with the
// syncproto merge, serves the pull feed by cursor, and shows records, their
// history and the quarantine. It owns the storage interface it needs (Store,
// Tx, ReadTx); internal/store implements it on bbolt.
package records
