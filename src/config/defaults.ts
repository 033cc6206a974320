// Defaults named in help texts, in a module of their own so that `--help` loads no config reader.

/** The agent's settings file when --agent-config is not given (used only if it exists). */
export const DEFAULT_AGENT_CONFIG = '/etc/spiderbackup/spiderbackup.ini';
