package syncproto

// CheckItem checks a push item, already valid on its own (Validate), against
// the server's state of the record (nil for a new record) and the pushing
// device (PROTOCOL.md §2). It returns an *Error with CodeScopeMismatch when
// the item changes the record's form or scope, CodeForgedClock when its
// clock claims another actor's writes the server has not seen, and
// CodeInvalidRecord when its count for the device claims writes it does not
// carry. skipForged leaves out the forged_clock check, for an admin
// re-applying a quarantined item.
func CheckItem(item State, server *Record, device string, skipForged bool) error {
	var sc Clock
	if server != nil {
		if item.Form != server.Form {
			return Errorf(CodeScopeMismatch, "form %s: a record's form never changes", quoteName(item.Form))
		}
		if item.Scope != server.Scope {
			return Errorf(CodeScopeMismatch, "scope %s: a record's scope never changes", quoteName(item.Scope))
		}
		sc = server.Clock
	}
	if !skipForged {
		for _, a := range item.Clock.Actors() {
			if a != device && item.Clock[a] > sc[a] {
				return Errorf(CodeForgedClock, "clock: count %d for actor %s is above the server's %d; a push may advance only its own device's entry", item.Clock[a], a, sc[a])
			}
		}
	}
	var maxOwn uint64
	for _, w := range item.Writes {
		if w.By == device && w.N > maxOwn {
			maxOwn = w.N
		}
	}
	if own := item.Clock[device]; own > sc[device] && own > maxOwn {
		return Errorf(CodeInvalidRecord, "clock: count %d for the pushing device claims writes the item does not carry (server has %d, item's writes go to %d)", own, sc[device], maxOwn)
	}
	return nil
}
