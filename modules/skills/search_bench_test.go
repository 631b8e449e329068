package skills

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nexus-suite/nexus/storage"
	"github.com/nexus-suite/nexus/storage/storagetest"
)

// benchSkills is the number of skills that the search benchmark publishes.
const benchSkills = 10_000

// benchWords are the words of generated names, descriptions and bodies,
// some with accents.
var benchWords = strings.Fields(`pdf merge split form invoice résumé cv letter email calendar meeting
	notes summary translate review code test deploy docker kubernetes sql query chart report
	slides excel csv json yaml markdown image resize crop photo video audio transcribe podcast
	café naïve crème brûlée recipe budget tax travel flight hotel weather news research paper
	citation bibliography latex diagram graph network security audit lint format refactor`)

// benchQueries are the searches that BenchmarkSearch times, by label.
var benchQueries = []struct {
	label string
	query searchQuery
}{
	{"word", searchQuery{Text: "invoice", Sort: sortRelevance}},
	{"accented", searchQuery{Text: "resume", Sort: sortRelevance}},
	{"two-words", searchQuery{Text: "merge invoice", Sort: sortRelevance}},
	{"exact-name", searchQuery{Text: "skill-travel-42", Sort: sortRelevance}},
	{"prefix", searchQuery{Text: "transl", Sort: sortRelevance}},
	{"typo", searchQuery{Text: "skill-travl-42", Sort: sortRelevance}},
	{"word-by-installs", searchQuery{Text: "recipe", Sort: sortInstalls}},
	{"word-by-updated", searchQuery{Text: "chart", Sort: sortUpdated}},
	{"all-by-installs", searchQuery{Sort: sortInstalls}},
	{"all-by-updated", searchQuery{Sort: sortUpdated}},
}

// BenchmarkSearch publishes 10,000 skills through the store, once per
// engine, and times each kind of search and all kinds in turn (mixed). It
// reports the 50th and 99th percentile of one search (a page of 20) in
// microseconds and the hits of the last search. Run it with
//
//	go test -run '^$' -bench BenchmarkSearch -benchtime 300x ./modules/skills/
func BenchmarkSearch(b *testing.B) {
	engines := []struct {
		name string
		open func() *storage.DB
	}{
		{"sqlite", func() *storage.DB { return storagetest.SQLite(b, (&Module{}).Migrations()) }},
		{"postgres", func() *storage.DB { return storagetest.Postgres(b, (&Module{}).Migrations()) }},
	}
	for _, engine := range engines {
		s := &store{db: engine.open()}
		seedSkills(b, context.Background(), s)
		for _, q := range benchQueries {
			b.Run(engine.name+"/"+q.label, func(b *testing.B) { benchmarkSearch(b, s, q.query) })
		}
		b.Run(engine.name+"/mixed", func(b *testing.B) { benchmarkSearch(b, s) })
	}
}

// benchmarkSearch times the queries in turn, or every query of
// benchQueries in turn when none is given.
func benchmarkSearch(b *testing.B, s *store, queries ...searchQuery) {
	if len(queries) == 0 {
		for _, q := range benchQueries {
			queries = append(queries, q.query)
		}
	}
	ctx := context.Background()
	durations := make([]time.Duration, 0, b.N)
	var hits []searchHit
	b.ResetTimer()
	for i := range b.N {
		q := queries[i%len(queries)]
		q.Limit = 21
		start := time.Now()
		var err error
		hits, err = s.search(ctx, q)
		durations = append(durations, time.Since(start))
		if err != nil {
			b.Fatalf("search %q: %v", q.Text, err)
		}
	}
	b.StopTimer()

	slices.Sort(durations)
	percentile := func(p float64) float64 {
		return float64(durations[int(p*float64(len(durations)-1))].Microseconds())
	}
	b.ReportMetric(percentile(0.50), "p50-µs")
	b.ReportMetric(percentile(0.99), "p99-µs")
	b.ReportMetric(float64(len(hits)), "hits")
}

// seedSkills publishes benchSkills skills with generated text through
// store.publish, so the search index is filled as in production.
func seedSkills(b *testing.B, ctx context.Context, s *store) {
	b.Helper()
	userID := "usr_bench"
	if _, err := s.db.ExecContext(ctx, `INSERT INTO users (id, email, created_at) VALUES ($1, $2, 0)`, userID, "bench@example.com"); err != nil {
		b.Fatalf("insert user: %v", err)
	}

	// Text is mostly filler from a vocabulary of 5,000 made-up words, with
	// one word in 20 from benchWords, so a query word matches a few
	// hundred skills rather than all of them.
	random := rand.New(rand.NewPCG(1, 2))
	filler := make([]string, 5000)
	for i := range filler {
		filler[i] = fmt.Sprintf("w%c%c%d", 'a'+rune(i%26), 'a'+rune(i/26%26), i)
	}
	words := func(n int) string {
		picked := make([]string, n)
		for i := range picked {
			if random.IntN(20) == 0 {
				picked[i] = benchWords[random.IntN(len(benchWords))]
			} else {
				picked[i] = filler[random.IntN(len(filler))]
			}
		}
		return strings.Join(picked, " ")
	}

	start := time.Now()
	now := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	for i := range benchSkills {
		name := fmt.Sprintf("skill-%s-%d", benchWords[i%len(benchWords)], i)
		name = strings.NewReplacer("é", "e", "ï", "i", "è", "e", "û", "u").Replace(name)
		version, _ := parseVersion("1.0.0")
		in := publishInput{
			UserID:       userID,
			Manifest:     manifest{Name: name, Description: words(15), Body: "# " + name + "\n\n" + words(300)},
			Version:      version,
			VersionText:  "1.0.0",
			Digest:       fmt.Sprintf("sha256:%064x", i),
			Size:         1000,
			UnpackedSize: 3000,
			Files:        3,
			Now:          now.Add(time.Duration(i) * time.Second),
			MonthlyLimit: benchSkills + 1,
		}
		if _, _, err := s.publish(ctx, in); err != nil {
			b.Fatalf("publish %s: %v", name, err)
		}
		if i%7 == 0 {
			if _, err := s.db.ExecContext(ctx, `UPDATE skills SET install_count = $2 WHERE name = $1`, name, random.IntN(1000)); err != nil {
				b.Fatalf("set install count: %v", err)
			}
		}
	}
	if s.db.Dialect == storage.Postgres {
		// Planner statistics as autovacuum would have them after a while.
		if _, err := s.db.ExecContext(ctx, `ANALYZE skills`); err != nil {
			b.Fatalf("analyze: %v", err)
		}
	}
	b.Logf("published %d skills on %s in %s", benchSkills, s.db.Dialect, time.Since(start).Round(time.Millisecond))
}
