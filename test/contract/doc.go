// Package contract holds one test suite per storage and transport port.
// Every adapter runs the same suite from its own tests, so the behaviour a
// port's doc comment promises is checked once, the same way, everywhere:
//
//	func TestLogStore(t *testing.T) {
//		contract.TestLogStore(t, func(t *testing.T) contract.LogHarness { ... })
//	}
//
// Each suite calls its open function once per subtest, for a fresh, empty
// instance; the open function registers its own cleanup with t. Harnesses
// carry Crash and Reopen hooks so that the suites can check durability: a
// crash must keep everything synced and may lose the rest, never part of
// one write.
package contract
