package records

// SetPreparePath turns the preparation of pushed records before the
// transaction on or off, and returns a function that restores it.
func SetPreparePath(on bool) (restore func()) {
	was := preparePath
	preparePath = on
	return func() { preparePath = was }
}
