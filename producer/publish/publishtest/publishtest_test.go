package publishtest

import "testing"

func TestConfigIsValidAndTheTestsOwn(t *testing.T) {
	topics := map[string]bool{}
	for _, name := range []string{"a", "b"} {
		t.Run(name, func(t *testing.T) {
			cfg, kf := Config(t)
			if err := cfg.Validate(); err != nil {
				t.Fatalf("Config(t) is invalid: %v", err)
			}
			if len(kf.Brokers()) == 0 {
				t.Fatal("Config(t) gave a factory without brokers")
			}
			if topics[cfg.Topic] {
				t.Fatalf("topic %q shared by two tests", cfg.Topic)
			}
			topics[cfg.Topic] = true
		})
	}
}
