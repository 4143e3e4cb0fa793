package syncproto

// IsUUID reports whether s is a UUID in its canonical form: 36 characters,
// lowercase hex digits and hyphens at 8, 13, 18 and 23. Actors and record ids
// are compared as strings, so one spelling per id is required.
func IsUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < 36; i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
				return false
			}
		}
	}
	return true
}

// IsSlug reports whether s is a valid form or scope name: [a-z0-9_-]{1,64}.
func IsSlug(s string) bool {
	if len(s) == 0 || len(s) > MaxFormOrScope {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// IsFieldName reports whether s is a valid non-reserved field name:
// [A-Za-z][A-Za-z0-9_.]{0,127}.
func IsFieldName(s string) bool {
	if len(s) == 0 || len(s) > MaxNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if i == 0 && !letter {
			return false
		}
		if !letter && !(c >= '0' && c <= '9' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}
