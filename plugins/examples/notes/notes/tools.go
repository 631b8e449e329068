package notes

import (
	"context"
	"fmt"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

type addNoteInput struct {
	Title string `json:"title" jsonschema:"short title of the note"`
	Body  string `json:"body,omitempty" jsonschema:"text of the note"`
}

type noteIDInput struct {
	ID int `json:"id" jsonschema:"id of the note, as returned by add_note"`
}

type searchInput struct {
	Query string `json:"query,omitempty" jsonschema:"text to find in titles and bodies, ignoring case; empty lists every note"`
}

type noteOutput struct {
	ID    int    `json:"id"`
	Title string `json:"title"`
	URI   string `json:"uri"`
}

type notesOutput struct {
	Notes []noteOutput `json:"notes"`
}

type deleteOutput struct {
	Deleted int `json:"deleted"`
}

// maxTitleBytes and maxBodyBytes bound what one note stores.
const (
	maxTitleBytes = 200
	maxBodyBytes  = 64 << 10
)

func addTools(server *mcp.Server, book *notebook) {
	mcp.AddTool(server, &mcp.Tool{
		Name:        "add_note",
		Description: "Store a note and return its id and resource URI.",
	}, func(_ context.Context, _ *mcp.CallToolRequest, in addNoteInput) (*mcp.CallToolResult, noteOutput, error) {
		title := strings.TrimSpace(in.Title)
		if title == "" || len(title) > maxTitleBytes {
			return nil, noteOutput{}, fmt.Errorf("invalid title: use 1 to %d bytes", maxTitleBytes)
		}
		if len(in.Body) > maxBodyBytes {
			return nil, noteOutput{}, fmt.Errorf("invalid body: at most %d bytes", maxBodyBytes)
		}

		n, err := book.add(title, in.Body)
		if err != nil {
			return nil, noteOutput{}, err
		}
		return nil, summarize(n), nil
	})

	mcp.AddTool(server, &mcp.Tool{
		Name:        "search_notes",
		Description: "List the notes whose title or body contains the query, oldest first.",
	}, func(_ context.Context, _ *mcp.CallToolRequest, in searchInput) (*mcp.CallToolResult, notesOutput, error) {
		found := book.list(in.Query)
		out := notesOutput{Notes: make([]noteOutput, 0, len(found))}
		for _, n := range found {
			out.Notes = append(out.Notes, summarize(n))
		}
		return nil, out, nil
	})

	mcp.AddTool(server, &mcp.Tool{
		Name:        "delete_note",
		Description: "Delete a note by id.",
	}, func(_ context.Context, _ *mcp.CallToolRequest, in noteIDInput) (*mcp.CallToolResult, deleteOutput, error) {
		if err := book.delete(in.ID); err != nil {
			return nil, deleteOutput{}, err
		}
		return nil, deleteOutput{Deleted: in.ID}, nil
	})
}

func summarize(n note) noteOutput {
	return noteOutput{ID: n.ID, Title: n.Title, URI: noteURI(n.ID)}
}
