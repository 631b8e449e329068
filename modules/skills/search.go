package skills

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"

	"github.com/nexus-suite/nexus/storage"
)

// Sort orders of search.
const (
	sortRelevance = "relevance"
	sortInstalls  = "installs"
	sortUpdated   = "updated"
)

// maxSearchTerms bounds the words of a query that reach the engine.
const maxSearchTerms = 16

// trigramThreshold is the pg_trgm similarity above which a name matches a
// query on PostgreSQL.
const trigramThreshold = "0.5"

// searchCursor is the position after the last hit of a page: the sort keys
// of that hit and its name as the tie breaker. It travels base64url-encoded
// JSON, opaque to clients.
type searchCursor struct {
	Sort  string  `json:"s"`
	Exact int     `json:"e,omitempty"`
	Score float64 `json:"r,omitempty"`
	Count int64   `json:"c,omitempty"`
	Time  int64   `json:"t,omitempty"`
	Name  string  `json:"n"`
}

// errBadCursor is a cursor that this server did not issue for this sort.
var errBadCursor = errors.New("invalid cursor")

func (c searchCursor) encode() string {
	raw, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(raw)
}

func decodeCursor(text, sort string) (*searchCursor, error) {
	if text == "" {
		return nil, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(text)
	if err != nil {
		return nil, errBadCursor
	}
	var c searchCursor
	if err := json.Unmarshal(raw, &c); err != nil || c.Sort != sort || c.Name == "" {
		return nil, errBadCursor
	}
	return &c, nil
}

// searchQuery is one page request of search.
type searchQuery struct {
	Text  string
	Sort  string
	After *searchCursor
	Limit int
}

// searchHit is a skill that matched, with the sort keys of its cursor.
type searchHit struct {
	skillRow
	Exact int
	Score float64
}

// cursor returns the cursor that continues after h. It carries every sort
// key, because relevance without text orders like installs.
func (h searchHit) cursor(sort string) string {
	c := searchCursor{Sort: sort, Exact: h.Exact, Score: h.Score, Count: h.InstallCount, Time: h.UpdatedAt.UnixMilli(), Name: h.Name}
	return c.encode()
}

// searchTerms splits text into words of letters and digits, at most maxSearchTerms.
func searchTerms(text string) []string {
	terms := strings.FieldsFunc(text, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
	if len(terms) > maxSearchTerms {
		terms = terms[:maxSearchTerms]
	}
	return terms
}

// search returns at most q.Limit skills after q.After. With text, a skill
// matches when every word is a prefix of a word of its name, description
// or SKILL.md body, ignoring case and accents. It also matches when its
// folded name equals the folded text, and on PostgreSQL when its name is
// similar by trigrams, which tolerates typos. Relevance puts the
// folded-name match first, then the engine's rank. Without text every
// skill matches, and relevance orders like installs.
func (s *store) search(ctx context.Context, q searchQuery) ([]searchHit, error) {
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}

	var ranked string
	switch {
	case strings.TrimSpace(q.Text) == "":
		ranked = `SELECT ` + skillColumns + `, 0 AS exact, CAST(0 AS DOUBLE PRECISION) AS score FROM skills s`
	case s.db.Dialect == storage.Postgres:
		ranked = postgresMatches(q.Text, arg)
	default:
		ranked = sqliteMatches(q.Text, arg)
	}

	order, after := orderAndCursor(q, arg)
	query := `SELECT * FROM (` + ranked + `) ranked` + after + ` ORDER BY ` + order + ` LIMIT ` + arg(q.Limit)

	var db querier = s.db
	if s.db.Dialect == storage.Postgres && strings.TrimSpace(q.Text) != "" {
		tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
		if err != nil {
			return nil, fmt.Errorf("search skills for %q: begin: %w", q.Text, err)
		}
		defer tx.Rollback()
		if err := tunePostgresSearch(ctx, tx, q.Sort); err != nil {
			return nil, fmt.Errorf("search skills for %q: %w", q.Text, err)
		}
		db = tx
	}
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("search skills for %q: %w", q.Text, err)
	}
	defer rows.Close()

	var hits []searchHit
	for rows.Next() {
		var hit searchHit
		row, err := scanSkill(rows, &hit.Exact, &hit.Score)
		if err != nil {
			return nil, fmt.Errorf("scan search hit: %w", err)
		}
		hit.skillRow = row
		hits = append(hits, hit)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("search skills for %q: %w", q.Text, err)
	}
	return hits, nil
}

// tunePostgresSearch sets the planner and pg_trgm settings of one search
// with text, for the transaction tx.
func tunePostgresSearch(ctx context.Context, tx *sql.Tx, sort string) error {
	// pg_trgm's default threshold, 0.3, lets a name match every name that
	// shares a common prefix such as "pdf-", and each match is ranked. 0.5
	// still matches a typo such as "pdf-tols" for "pdf-tools" (similarity 0.73).
	if _, err := tx.ExecContext(ctx, `SET LOCAL pg_trgm.similarity_threshold = `+trigramThreshold); err != nil {
		return err
	}
	if sort != sortRelevance {
		return nil
	}
	// Ranking reads every match, and for a word in a quarter of the skills
	// the planner picks a sequential scan that reads the search_vector of
	// every row. Over 10,000 skills in the search benchmark that took 40 to
	// 60 ms against 11 ms for the bitmap scan of the GIN indexes, so
	// sequential scans are off for this query.
	_, err := tx.ExecContext(ctx, `SET LOCAL enable_seqscan = off`)
	return err
}

// sqliteMatches selects the skills that match text through the FTS5 index,
// whose unicode61 tokenizer with remove_diacritics 2 ignores case and
// accents, plus the skill whose folded name equals the folded text. The
// score is bm25, weighting the name over the description and the
// description over the body. FTS5 has no typo tolerance.
func sqliteMatches(text string, arg func(any) string) string {
	folded := arg(foldName(text))
	var words []string
	for _, term := range searchTerms(text) {
		words = append(words, `"`+term+`"*`)
	}

	hits := `SELECT id, CAST(0 AS DOUBLE PRECISION) AS score FROM skills WHERE folded_name = ` + folded
	if len(words) > 0 {
		hits = `SELECT rowid AS id, -bm25(skills_fts, 10.0, 10.0, 3.0, 1.0) AS score FROM skills_fts
		        WHERE skills_fts MATCH ` + arg(strings.Join(words, " ")) + `
		        UNION ALL ` + hits
	}
	return `SELECT ` + skillColumns + `, CASE WHEN s.folded_name = ` + folded + ` THEN 1 ELSE 0 END AS exact, best.score AS score
	        FROM (SELECT id, MAX(score) AS score FROM (` + hits + `) hits GROUP BY id) best
	        JOIN skills s ON s.id = best.id`
}

// postgresMatches selects the skills whose search_vector (the unaccented
// words of name, description and body) contains every word as a prefix.
// It also selects those whose name is similar to the unaccented,
// lower-case text by pg_trgm's % operator (similarity above
// pg_trgm.similarity_threshold, set to trigramThreshold), and the one
// whose folded name equals the folded text. The score is ts_rank over
// rank_vector (the name and description, because a vector with the body
// is large to read for every match) plus the trigram similarity of the name.
func postgresMatches(text string, arg func(any) string) string {
	folded := arg(foldName(text))
	var words []string
	for _, term := range searchTerms(text) {
		words = append(words, term+":*")
	}
	tsquery := arg(strings.Join(words, " & "))
	plain := `lower(skills_unaccent(` + arg(text) + `))`

	return `SELECT ` + skillColumns + `, CASE WHEN s.folded_name = ` + folded + ` THEN 1 ELSE 0 END AS exact,
	            CAST(ts_rank(s.rank_vector, query) + public.similarity(s.name, ` + plain + `) AS DOUBLE PRECISION) AS score
	        FROM skills s, to_tsquery('simple', skills_unaccent(` + tsquery + `)) query
	        WHERE s.search_vector @@ query OR s.name OPERATOR(public.%) ` + plain + ` OR s.folded_name = ` + folded
}

// orderAndCursor returns the ORDER BY of the sort and the WHERE clause
// that starts after the cursor, over the columns of ranked.
func orderAndCursor(q searchQuery, arg func(any) string) (order, after string) {
	c := q.After
	switch {
	case q.Sort == sortUpdated:
		order = `updated_at DESC, name`
		if c != nil {
			t, n := arg(c.Time), arg(c.Name)
			after = ` WHERE updated_at < ` + t + ` OR (updated_at = ` + t + ` AND name > ` + n + `)`
		}
	case q.Sort == sortRelevance && strings.TrimSpace(q.Text) != "":
		order = `exact DESC, score DESC, name`
		if c != nil {
			e, r, n := arg(c.Exact), arg(c.Score), arg(c.Name)
			after = ` WHERE exact < ` + e + ` OR (exact = ` + e + ` AND (score < ` + r + ` OR (score = ` + r + ` AND name > ` + n + `)))`
		}
	default:
		order = `install_count DESC, name`
		if c != nil {
			k, n := arg(c.Count), arg(c.Name)
			after = ` WHERE install_count < ` + k + ` OR (install_count = ` + k + ` AND name > ` + n + `)`
		}
	}
	return order, after
}
