// Package arch enforces Seshat's dependency rule (see ARCHITECTURE.md) from
// the import lines of every non-test Go file in the repository.
package arch

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/seshat-kv/seshat"

// forbiddenInCore are the standard packages the pure Raft core may not
// import: it reads no clock, does no I/O and starts no goroutine.
var forbiddenInCore = []string{"time", "os", "net", "sync", "sync/atomic", "crypto/rand", "math/rand"}

// violation returns why package pkg (a path relative to the module root)
// may not import imp, or "" if it may.
func violation(pkg, imp string) string {
	if pkg == "consensus" && slices.Contains(forbiddenInCore, imp) {
		return "the core package consensus imports " + imp
	}
	rel, ok := strings.CutPrefix(imp, module+"/")
	if !ok {
		return ""
	}
	layer, _, _ := strings.Cut(pkg, "/")
	ilayer, _, _ := strings.Cut(rel, "/")
	allowed := func(layers ...string) bool { return slices.Contains(layers, ilayer) }
	ok = true
	switch layer {
	case "domain":
		ok = allowed("domain")
	case "ports":
		ok = allowed("domain", "ports")
	case "consensus":
		ok = allowed("domain", "ports", "consensus")
	case "app":
		ok = allowed("domain", "ports", "consensus", "app")
	case "adapters":
		if ilayer == "adapters" {
			ok = strings.Split(pkg, "/")[1] == strings.Split(rel, "/")[1]
		} else {
			ok = allowed("domain", "ports")
		}
	}
	if !ok {
		return pkg + " imports " + rel
	}
	return ""
}

func TestRuleTable(t *testing.T) {
	// The rule itself, so that a checker that can never fail is caught.
	cases := []struct {
		pkg, imp string
		bad      bool
	}{
		{"domain", "fmt", false},
		{"domain", module + "/ports", true},
		{"ports", module + "/domain", false},
		{"ports", module + "/consensus", true},
		{"consensus", module + "/ports", false},
		{"consensus", "time", true},
		{"consensus", "sync", true},
		{"consensus/node", "time", false},
		{"consensus/node", module + "/consensus", false},
		{"consensus/node", module + "/adapters/memory", true},
		{"adapters/memory", module + "/ports", false},
		{"adapters/memory", module + "/consensus", true},
		{"adapters/pebble", module + "/adapters/memory", true},
		{"adapters/pebble", module + "/adapters/pebble/internal", false},
		{"adapters/resp", module + "/app", true},
		{"app", module + "/consensus/node", false},
		{"app", module + "/adapters/pebble", true},
		{"cmd/seshatd", module + "/adapters/pebble", false},
		{"test/sim", module + "/consensus", false},
	}
	for _, c := range cases {
		if got := violation(c.pkg, c.imp) != ""; got != c.bad {
			t.Errorf("violation(%q, %q) = %v, want %v", c.pkg, c.imp, got, c.bad)
		}
	}
}

func TestImportsPointInward(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root not found at %s: %v", root, err)
	}
	fset := token.NewFileSet()
	checked := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "data" || name == "bin") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		pkg := filepath.ToSlash(rel)
		for _, spec := range f.Imports {
			imp, _ := strconv.Unquote(spec.Path.Value)
			if v := violation(pkg, imp); v != "" {
				t.Errorf("%s: %s", path, v)
			}
		}
		checked++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 10 {
		t.Fatalf("only %d Go files checked: the walk is broken", checked)
	}
}
