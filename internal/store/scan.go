package store

import (
	"bytes"
	"encoding/json"
	"sort"

	"github.com/fieldsync/fieldsync/internal/records"
	sp "github.com/fieldsync/fieldsync/syncproto"
)

// Conflicts implements records.ReadTx. Positions are the conflict index's
// keys: detection time (ms) then record id.
func (t *tx) Conflicts(after []byte, fn func(pos []byte, id string) (bool, error)) error {
	c := t.btx.Bucket(bConflicts).Cursor()
	k, _ := c.First()
	if after != nil {
		k, _ = c.Seek(after)
		if k != nil && bytes.Equal(k, after) {
			k, _ = c.Next()
		}
	}
	for ; k != nil; k, _ = c.Next() {
		if len(k) != 24 {
			continue
		}
		more, err := fn(append([]byte(nil), k...), keyID(k[8:]))
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// indexFieldNames remembers every non-reserved field name stored for a
// form, so a CSV export knows its columns before its first row. Keys are
// form, a zero byte, and the name.
func (t *tx) indexFieldNames(next *records.Stored) error {
	form := next.State.Form
	for _, w := range next.State.Writes {
		if sameNames(w.Fields, t.lastNames[form]) {
			continue // most writes of a form carry the same fields
		}
		if err := t.indexNames(form, w.Fields); err != nil {
			return err
		}
	}
	return nil
}

// indexNames puts the names of fields that this transaction has not seen
// for form in the field names bucket.
func (t *tx) indexNames(form string, fields map[string]json.RawMessage) error {
	b := t.btx.Bucket(bFieldNames)
	if t.namesKnown == nil {
		t.namesKnown, t.lastNames = map[formField]struct{}{}, map[string][]string{}
	}
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
		ff := formField{form, name}
		if _, ok := t.namesKnown[ff]; ok || sp.IsReserved(name) {
			continue
		}
		k := fieldNameKey(form, name)
		if b.Get(k) == nil {
			if err := b.Put(k, []byte{}); err != nil {
				return err
			}
		}
		t.namesKnown[ff] = struct{}{}
	}
	t.lastNames[form] = names
	return nil
}

// sameNames reports whether fields has exactly the given names.
func sameNames(fields map[string]json.RawMessage, names []string) bool {
	if len(fields) != len(names) || names == nil {
		return false
	}
	for _, n := range names {
		if _, ok := fields[n]; !ok {
			return false
		}
	}
	return true
}

func fieldNameKey(form, name string) []byte {
	k := make([]byte, 0, len(form)+1+len(name))
	k = append(k, form...)
	k = append(k, 0)
	return append(k, name...)
}

// FieldNames implements records.ReadTx.
func (t *tx) FieldNames(form string) ([]string, error) {
	seen := map[string]bool{}
	c := t.btx.Bucket(bFieldNames).Cursor()
	var prefix []byte
	if form != "" {
		prefix = fieldNameKey(form, "")
	}
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		if i := bytes.IndexByte(k, 0); i >= 0 {
			seen[string(k[i+1:])] = true
		}
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out, nil
}

// Rows implements records.ReadTx: it reads records' heads only.
func (t *tx) Rows(after string, fn func(*records.Row) (bool, error)) error {
	c := t.btx.Bucket(bRecords).Cursor()
	k, v := c.First()
	if ak, ok := idKey(after); ok {
		k, v = c.Seek(ak)
		if k != nil && bytes.Equal(k, ak) {
			k, v = c.Next()
		}
	}
	row := &records.Row{}
	for ; k != nil; k, v = c.Next() {
		h, err := decodeHead(v)
		if err != nil {
			return err
		}
		*row = records.Row{ID: keyID(k), Form: string(h.form), Scope: string(h.scope), Seq: uint64(h.seq), UpdatedAt: fromMs(h.updated), Summary: h.summary(false)}
		more, err := fn(row)
		if err != nil || !more {
			return err
		}
	}
	return nil
}
