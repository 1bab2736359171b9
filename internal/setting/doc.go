// Package setting binds component configuration to command-line flags with
// environment twins, and carries the one error type every Validate returns.
//
// A component (consumer, producer, ...) validates its Config in terms of
// setting names (the flag name without dashes) and knows nothing of where a
// value came from. The command line binds those names to flags and env
// variables, remembers which one the user actually set, and rewrites each
// *Error to name it: a user who exported CONSUMER_BATCH_SIZE=abc is told
// about CONSUMER_BATCH_SIZE, not about a flag they never typed. Errors are
// typed, so no caller parses error text to find the setting.
package setting
