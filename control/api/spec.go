package api

import _ "embed"

// Spec is the OpenAPI 3 document of the API, served at SpecPath.
//
//go:embed openapi.json
var Spec []byte

// SpecPath is where Spec is served, without a token.
const SpecPath = "/api/v1/openapi.json"
