package ports

// RequestBytes is the size of the arguments of reqs (their calls and
// transactions' calls), which deadlines of a batch carrying large values
// scale with.
func RequestBytes(reqs []Request) int {
	n := 0
	for _, r := range reqs {
		for _, a := range r.Call.Args {
			n += len(a)
		}
		for _, c := range r.Tx {
			for _, a := range c.Args {
				n += len(a)
			}
		}
	}
	return n
}
