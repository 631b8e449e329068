package notes

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// note is one note of the notebook.
type note struct {
	ID      int       `json:"id"`
	Title   string    `json:"title"`
	Body    string    `json:"body"`
	Created time.Time `json:"created"`
}

// errNotFound is returned for a note id that does not exist.
var errNotFound = errors.New("note not found")

// notebook holds the notes of one server, safe for concurrent sessions.
type notebook struct {
	mu       sync.Mutex
	notes    map[int]note
	nextID   int
	maxNotes int
}

func newNotebook(maxNotes int) *notebook {
	return &notebook{notes: make(map[int]note), nextID: 1, maxNotes: maxNotes}
}

func (b *notebook) add(title, body string) (note, error) {
	b.mu.Lock()
	defer b.mu.Unlock()

	if len(b.notes) >= b.maxNotes {
		return note{}, fmt.Errorf("notebook is full: it keeps at most %d notes; delete one first", b.maxNotes)
	}
	n := note{ID: b.nextID, Title: title, Body: body, Created: time.Now().UTC()}
	b.notes[n.ID] = n
	b.nextID++
	return n, nil
}

func (b *notebook) get(id int) (note, error) {
	b.mu.Lock()
	defer b.mu.Unlock()

	n, ok := b.notes[id]
	if !ok {
		return note{}, fmt.Errorf("%w: %d", errNotFound, id)
	}
	return n, nil
}

func (b *notebook) delete(id int) error {
	b.mu.Lock()
	defer b.mu.Unlock()

	if _, ok := b.notes[id]; !ok {
		return fmt.Errorf("%w: %d", errNotFound, id)
	}
	delete(b.notes, id)
	return nil
}

// list returns the notes whose title or body contains query, ignoring case,
// oldest first; every note when query is empty.
func (b *notebook) list(query string) []note {
	b.mu.Lock()
	defer b.mu.Unlock()

	query = strings.ToLower(query)
	found := make([]note, 0, len(b.notes))
	for _, n := range b.notes {
		if query == "" || strings.Contains(strings.ToLower(n.Title), query) || strings.Contains(strings.ToLower(n.Body), query) {
			found = append(found, n)
		}
	}
	slices.SortFunc(found, func(a, c note) int { return a.ID - c.ID })
	return found
}
