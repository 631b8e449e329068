// Command notes is an example nexus MCP plugin written with plugins/sdk: a
// notebook with tools to add, search and delete notes, and each note
// readable as a resource at note://{id}. The server itself is in package
// notes beside this file, so tests and benchmarks can run it in process.
//
// Build it and add it to the catalog as plugins/README.md describes.
package main

import (
	"github.com/nexus-suite/nexus/plugins/examples/notes/notes"
	"github.com/nexus-suite/nexus/plugins/sdk"
)

func main() {
	sdk.ServeConfigured(notes.Manifest(), notes.NewServer)
}
