// Package skills is the Skills Hub API section: publishing skill archives,
// search, versions and installations.
package skills
