"""Local development stack: infrastructure launcher (`stack.infra`) and process supervisor."""
