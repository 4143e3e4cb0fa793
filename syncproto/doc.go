// Package syncproto is the fieldsync wire protocol, shared by the server, the
// tablet SDK and the tests: record states, vector clocks, siblings and dots,
// the join (merge) of two states, the push merge of a partial item, the
// visible value (last writer wins), conflict detection, validation, the wire
// types of push and pull, and the error codes.
//
// It is the one implementation of the merge (PROTOCOL.md §1–§2). It depends
// on the standard library only.
package syncproto
