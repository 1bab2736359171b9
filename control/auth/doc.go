// Package auth is the admin API's access control: bearer tokens with a
// role (admin, writer, reader), kept in the control Redis as a SHA-256
// digest with their name, role, creation and last use, shown once when
// created and revocable; and the HTTP middleware that answers 401 for a
// missing, unknown or revoked token and 403 for a role below the route's.
//
// Roles are ordered: an admin may do everything, a writer what a reader
// may plus changing mappings, running them, editing list segments and
// creating or updating destinations; a reader only reads. What each
// route needs is the route table's (control/api), not this package's.
package auth
