package records

// SetFreshPath turns the prepared path for new records on or off, and
// returns a function that restores it.
func SetFreshPath(on bool) (restore func()) {
	was := freshPath
	freshPath = on
	return func() { freshPath = was }
}
