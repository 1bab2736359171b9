package auth

import "fmt"

// Role is what a token may do. Roles are ordered: each may do what the
// ones below it may.
type Role string

// Roles, lowest first.
const (
	Reader Role = "reader"
	Writer Role = "writer"
	Admin  Role = "admin"
)

// Roles lists every role, lowest first.
var Roles = []Role{Reader, Writer, Admin}

// rank orders the roles; 0 is no role.
func (r Role) rank() int {
	for i, x := range Roles {
		if x == r {
			return i + 1
		}
	}
	return 0
}

// Valid tells whether r is one of Roles.
func (r Role) Valid() bool { return r.rank() > 0 }

// Allows tells whether a token of role r may do what needs role need. An
// invalid role allows nothing, and nothing allows an invalid need.
func (r Role) Allows(need Role) bool { return r.Valid() && need.Valid() && r.rank() >= need.rank() }

// ParseRole reads a role's name.
func ParseRole(s string) (Role, error) {
	r := Role(s)
	if !r.Valid() {
		return "", fmt.Errorf("role %q: want admin, writer or reader", s)
	}
	return r, nil
}
