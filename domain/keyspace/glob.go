package keyspace

// maxGlobNesting bounds the recursion of Match, as Redis 7 bounds
// stringmatchlen's: a pattern needing more nested '*' fails to match.
const maxGlobNesting = 1000

// Match reports whether s matches the glob pattern, exactly as Redis 7's
// stringmatchlen does (KEYS, SCAN MATCH): '*' any run of bytes, '?' one
// byte, "[abc]", "[^abc]", "[a-z]" (reversed ranges allowed) a class of one
// byte, '\' escapes the next byte. Quirks kept: an unterminated '[' class
// ends with the pattern; bytes compare as C's signed char in ranges; nocase
// folds only ASCII letters, and not after a '\' inside a class. Like Redis,
// "*" does not match the empty string here (KEYS and SCAN treat a pattern
// of exactly "*" as matching everything before calling it).
//
// Its cost is bounded: once the rest of a pattern fails after a '*' at
// every position, no earlier '*' tries longer matches, and nesting beyond
// maxGlobNesting fails.
func Match(pattern, s []byte, nocase bool) bool {
	skip := false
	return match(pattern, s, nocase, &skip, 0)
}

func lowerByte(b byte) byte {
	if 'A' <= b && b <= 'Z' {
		return b + 'a' - 'A'
	}
	return b
}

// lowerChar is C's tolower in the "C" locale over a (signed) char value.
func lowerChar(c int) int {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func sameByte(a, b byte, nocase bool) bool {
	if nocase {
		return lowerByte(a) == lowerByte(b)
	}
	return a == b
}

// match is stringmatchlen_impl. Indexes past the end of p read as 0, as
// C reads the terminating NUL of Redis's strings.
func match(p, s []byte, nocase bool, skip *bool, nesting int) bool {
	if nesting > maxGlobNesting {
		return false
	}
	at := func(k int) byte {
		if k < len(p) {
			return p[k]
		}
		return 0
	}
	i, j := 0, 0
	for i < len(p) && j < len(s) {
		switch p[i] {
		case '*':
			for i+1 < len(p) && p[i+1] == '*' {
				i++
			}
			if i == len(p)-1 {
				return true
			}
			for j < len(s) {
				if match(p[i+1:], s[j:], nocase, skip, nesting+1) {
					return true
				}
				if *skip {
					return false
				}
				j++
			}
			// The rest of the pattern matches nowhere in the rest of s:
			// no earlier '*' can do better by matching more.
			*skip = true
			return false
		case '?':
			j++
		case '[':
			i++
			not := at(i) == '^'
			if not {
				i++
			}
			matched := false
			for {
				if at(i) == '\\' && len(p)-i >= 2 {
					i++
					if p[i] == s[j] {
						matched = true
					}
				} else if at(i) == ']' {
					break
				} else if i == len(p) {
					// Unterminated: step back so that the outer
					// advance ends at the pattern's end.
					i--
					break
				} else if len(p)-i >= 3 && p[i+1] == '-' {
					start, end, c := int(int8(p[i])), int(int8(p[i+2])), int(int8(s[j]))
					if start > end {
						start, end = end, start
					}
					if nocase {
						start, end, c = lowerChar(start), lowerChar(end), lowerChar(c)
					}
					i += 2
					if c >= start && c <= end {
						matched = true
					}
				} else if sameByte(p[i], s[j], nocase) {
					matched = true
				}
				i++
			}
			if not {
				matched = !matched
			}
			if !matched {
				return false
			}
			j++
		case '\\':
			if len(p)-i >= 2 {
				i++
			}
			fallthrough
		default:
			if !sameByte(p[i], s[j], nocase) {
				return false
			}
			j++
		}
		i++
		if j == len(s) {
			for at(i) == '*' {
				i++
			}
			break
		}
	}
	return i == len(p) && j == len(s)
}
