package node

// inlineApplyBytes is the most entry data an apply job run on the loop
// may carry (see Node.apply): a large value (hundreds of MB) takes seconds
// to apply and sync, and the loop must go on ticking, answering
// heartbeats and sending appends meanwhile.
const inlineApplyBytes = 256 << 10

// heavy reports whether j carries more entry data than inlineApplyBytes.
func (j *ApplyJob) heavy() bool {
	n := 0
	for i := range j.Entries {
		if n += len(j.Entries[i].Data); n > inlineApplyBytes {
			return true
		}
	}
	return false
}
