package notes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// noteURIPrefix starts the URI of every note resource.
const noteURIPrefix = "note://"

// indexURI is the resource listing every note.
const indexURI = "notes://index"

func noteURI(id int) string {
	return noteURIPrefix + strconv.Itoa(id)
}

func addResources(server *mcp.Server, book *notebook) {
	server.AddResource(&mcp.Resource{
		URI:         indexURI,
		Name:        "index",
		Description: "Every note's id, title and URI as JSON.",
		MIMEType:    "application/json",
	}, func(_ context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
		found := book.list("")
		out := make([]noteOutput, 0, len(found))
		for _, n := range found {
			out = append(out, summarize(n))
		}
		data, err := json.Marshal(out)
		if err != nil {
			return nil, fmt.Errorf("encode note index: %w", err)
		}
		return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{
			{URI: req.Params.URI, MIMEType: "application/json", Text: string(data)},
		}}, nil
	})

	server.AddResourceTemplate(&mcp.ResourceTemplate{
		URITemplate: noteURIPrefix + "{id}",
		Name:        "note",
		Description: "One note as Markdown: its title as a heading, then its body.",
		MIMEType:    "text/markdown",
	}, func(_ context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
		id, err := strconv.Atoi(strings.TrimPrefix(req.Params.URI, noteURIPrefix))
		if err != nil {
			return nil, mcp.ResourceNotFoundError(req.Params.URI)
		}
		n, err := book.get(id)
		if errors.Is(err, errNotFound) {
			return nil, mcp.ResourceNotFoundError(req.Params.URI)
		}
		if err != nil {
			return nil, err
		}

		text := "# " + n.Title + "\n\n" + n.Body + "\n"
		return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{
			{URI: req.Params.URI, MIMEType: "text/markdown", Text: text},
		}}, nil
	})
}
