/**
 * Secret formats the redactor knows, as data. The formats are public facts about each provider's
 * credentials (prefixes, alphabets, lengths), as catalogued by gitleaks' default rule set and
 * secretlint's recommended preset; the patterns are written for this redactor, not copied.
 *
 * Each rule is a RegExp source compiled with the flags given ("g" is always added). `keep`: the
 * first capture group is kept (a header name, a user name) and only the rest is replaced.
 * `entropy`: the second capture group (or the whole match) is replaced only when its Shannon
 * entropy in bits per character reaches this value, so `password: required` stays readable;
 * with `needsDigit`, only when it also holds a digit (source code assigns names, not literals).
 *
 * `{B}` at the start of a pattern stands for a token's left boundary: not preceded by a letter,
 * digit or `_`, or directly after an ANSI colour code (`\x1b[31mghp_...`), where `\b` does not
 * hold. The redactor checks it on each match rather than as a lookbehind, which would keep the
 * regular expression engine from scanning for the literal prefix.
 */

export interface SecretRule {
  id: string;
  description: string;
  pattern: string;
  flags?: string;
  /**
   * Literals one of which every match contains (lower case for an "i" rule): a text holding
   * none of them skips the rule, which keeps redaction of megabytes of log fast.
   */
  hints: readonly string[];
  keep?: boolean;
  entropy?: number;
  /** The value must hold a digit: code such as `token = self.token` is not a secret. */
  needsDigit?: boolean;
  /** A value that reads as code (`config.apiKey`, `request.headers.get`, `authToken`) is kept. */
  skipCode?: boolean;
}

export const TOKEN_BOUNDARY = String.raw`(?:(?<=\x1b\[[0-9;?]*[A-Za-z])|(?<![A-Za-z0-9_]))`;

export const SECRET_RULES: readonly SecretRule[] = [
  // Private keys: from the BEGIN line to the END line, or to the end of the text when output
  // clipping cut the END off. Also with literal "\n" escapes (JSON service-account files).
  {
    id: "private-key",
    description: "PEM private key block (RSA, EC, DSA, OpenSSH, PKCS#8, encrypted, PGP)",
    hints: ["PRIVATE KEY"],
    pattern: String.raw`-----BEGIN[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?(?:-----END[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----|$)`,
  },
  {
    id: "age-secret-key",
    description: "age encryption secret key",
    hints: ["AGE-SECRET-KEY-1"],
    pattern: String.raw`AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}`,
  },

  // GitHub.
  {
    id: "github-fine-grained-pat",
    description: "GitHub fine-grained personal access token",
    hints: ["github_pat_"],
    pattern: String.raw`{B}github_pat_[A-Za-z0-9_]{50,255}`,
  },
  {
    id: "github-token",
    description:
      "GitHub ghp_ (PAT), gho_ (OAuth), ghu_ (user-to-server), ghs_ (installation, including the long format with . and _), ghr_ (refresh)",
    hints: ["ghp_", "gho_", "ghu_", "ghs_", "ghr_"],
    pattern: String.raw`{B}gh[pousr]_(?=[A-Za-z0-9_.-]{36})[A-Za-z0-9_]+(?:[.-]+[A-Za-z0-9_]+)*`,
  },

  // GitLab.
  {
    id: "gitlab-token",
    description: "GitLab personal, deploy, pipeline-trigger, runner, OAuth and other tokens",
    hints: [
      "glpat-",
      "gldt-",
      "glptt-",
      "glrt-",
      "glsoat-",
      "glcbt-",
      "gloas-",
      "glimt-",
      "glagent-",
      "glffct-",
      "glft-",
      "glwt-",
    ],
    pattern: String.raw`{B}gl(?:pat|dt|ptt|rt|soat|cbt|oas|imt|agent|ffct|ft|wt)-[A-Za-z0-9_-]{20,}(?:\.[A-Za-z0-9_-]+)*`,
  },
  {
    id: "gitlab-runner-registration",
    description: "GitLab runner registration token",
    hints: ["GR1348941"],
    pattern: String.raw`{B}GR1348941[A-Za-z0-9_-]{20,}`,
  },

  // Cloud providers.
  {
    id: "aws-access-key-id",
    description: "AWS access key id (long-term AKIA, temporary ASIA, and the other key prefixes)",
    hints: ["A3T", "AKIA", "ASIA", "ABIA", "ACCA", "AGPA", "AIDA", "AROA", "AIPA", "ANPA", "ANVA"],
    pattern: String.raw`{B}(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA)[A-Z2-7]{16}(?![A-Za-z0-9])`,
  },
  {
    id: "aws-secret-access-key",
    description: "AWS secret access key after its usual names",
    hints: ["awssecret", "aws_secret", "secretaccesskey"],
    pattern: String.raw`((?:aws_?secret_?access_?key|aws_?secret|secretaccesskey)["']?\s*(?::|=|=>)\s*["']?)[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+])`,
    flags: "i",
    keep: true,
  },
  {
    id: "google-api-key",
    description: "Google API key",
    hints: ["AIza"],
    pattern: String.raw`{B}AIza[A-Za-z0-9_-]{35}(?![A-Za-z0-9_-])`,
  },
  {
    id: "google-oauth-secret",
    description: "Google OAuth client secret",
    hints: ["GOCSPX-"],
    pattern: String.raw`{B}GOCSPX-[A-Za-z0-9_-]{28}`,
  },
  {
    id: "google-oauth-access-token",
    description: "Google OAuth access token",
    hints: ["ya29."],
    pattern: String.raw`{B}ya29\.[A-Za-z0-9_-]{30,}`,
  },
  {
    id: "azure-storage-key",
    description: "Azure storage account key in a connection string",
    hints: ["accountkey=", "sharedaccesskey="],
    pattern: String.raw`((?:AccountKey|SharedAccessKey)=)[A-Za-z0-9+/]{40,100}={0,2}`,
    flags: "i",
    keep: true,
  },
  {
    id: "azure-sas-signature",
    description: "Azure shared access signature in a URL",
    hints: ["sig="],
    pattern: String.raw`([?&]sig=)[A-Za-z0-9%+/=]{30,}`,
    keep: true,
  },
  {
    id: "azure-ad-client-secret",
    description: "Azure AD (Entra) client secret",
    hints: ["Q~"],
    pattern: String.raw`{B}[A-Za-z0-9_~.]{3}\dQ~[A-Za-z0-9_~.-]{31,34}(?![A-Za-z0-9_~.-])`,
  },
  {
    id: "digitalocean-token",
    description: "DigitalOcean personal, OAuth and refresh tokens",
    hints: ["doo_v1_", "dop_v1_", "dor_v1_"],
    pattern: String.raw`{B}do[opr]_v1_[a-f0-9]{64}`,
  },
  {
    id: "databricks-token",
    description: "Databricks API token",
    hints: ["dapi"],
    pattern: String.raw`{B}dapi[a-f0-9]{32}(?:-\d)?(?![A-Za-z0-9])`,
  },
  {
    id: "hashicorp-vault-token",
    description: "HashiCorp Vault service and batch tokens",
    hints: ["hvs.", "hvb."],
    pattern: String.raw`{B}hv[sb]\.[A-Za-z0-9_-]{24,}`,
  },
  {
    id: "terraform-cloud-token",
    description: "Terraform Cloud / HCP API token",
    hints: [".atlasv1."],
    pattern: String.raw`{B}[a-z0-9]{14}\.atlasv1\.[A-Za-z0-9_=-]{60,70}`,
  },

  // Chat and messaging.
  {
    id: "slack-token",
    description: "Slack bot, user, app-level, config and legacy tokens",
    hints: ["xox"],
    pattern: String.raw`{B}(?:xox[abeoprs]|xoxe\.xox[bp])-[0-9A-Za-z-]{10,}`,
  },
  {
    id: "slack-app-token",
    description: "Slack app-level token",
    hints: ["xapp-"],
    pattern: String.raw`{B}xapp-\d-[A-Z0-9]+-\d+-[a-z0-9]+`,
    flags: "i",
  },
  {
    id: "slack-webhook",
    description: "Slack incoming webhook and workflow URLs",
    hints: ["hooks.slack.com/"],
    pattern: String.raw`hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/+-]{20,}`,
  },
  {
    id: "discord-webhook",
    description: "Discord webhook URL",
    hints: ["discord"],
    pattern: String.raw`(discord(?:app)?\.com/api/webhooks/\d+/)[A-Za-z0-9_-]{20,}`,
    keep: true,
  },
  {
    id: "telegram-bot-token",
    description: "Telegram bot token",
    hints: [":AA"],
    pattern: String.raw`{B}\d{8,10}:AA[A-Za-z0-9_-]{33}(?![A-Za-z0-9_-])`,
  },
  {
    id: "twilio-api-key",
    description: "Twilio API key SID",
    hints: ["SK"],
    pattern: String.raw`{B}SK[0-9a-fA-F]{32}(?![A-Za-z0-9])`,
  },
  {
    id: "sendgrid-api-key",
    description: "SendGrid API key",
    hints: ["SG."],
    pattern: String.raw`{B}SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}`,
  },
  {
    id: "mailgun-key",
    description: "Mailgun private API key",
    hints: ["key-"],
    pattern: String.raw`{B}key-[a-f0-9]{32}(?![A-Za-z0-9])`,
  },

  // Payments and commerce.
  {
    id: "stripe-key",
    description: "Stripe secret and restricted keys",
    hints: ["sk_", "rk_"],
    pattern: String.raw`{B}(?:sk|rk)_(?:test|live|prod)_[A-Za-z0-9]{10,99}`,
  },
  {
    id: "stripe-webhook-secret",
    description: "Stripe webhook signing secret",
    hints: ["whsec_"],
    pattern: String.raw`{B}whsec_[A-Za-z0-9+/=]{24,}`,
  },
  {
    id: "square-token",
    description: "Square access token and OAuth secret",
    hints: ["sq0atp", "sq0csp", "EAAA"],
    pattern: String.raw`{B}(?:sq0atp|sq0csp|EAAA)[A-Za-z0-9_-]{22,60}`,
  },
  {
    id: "shopify-token",
    description: "Shopify access, custom-app, private-app and shared-secret tokens",
    hints: ["shpat_", "shpca_", "shppa_", "shpss_"],
    pattern: String.raw`{B}shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}`,
  },

  // AI providers.
  {
    id: "anthropic-key",
    description: "Anthropic API, admin and OAuth keys",
    hints: ["sk-ant-"],
    pattern: String.raw`{B}sk-ant-[a-z]{2,10}\d{2}-[A-Za-z0-9_-]{20,}`,
  },
  {
    id: "openai-key",
    description: "OpenAI project, service-account, admin and legacy API keys",
    hints: ["sk-"],
    pattern: String.raw`{B}sk-(?:(?:proj|svcacct|admin|None)-[A-Za-z0-9_-]{20,}|[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}|[A-Za-z0-9]{48}(?![A-Za-z0-9]))`,
  },
  {
    id: "huggingface-token",
    description: "Hugging Face access token",
    hints: ["hf_"],
    pattern: String.raw`{B}hf_[A-Za-z]{34}(?![A-Za-z0-9])`,
  },

  // Package registries and developer services.
  {
    id: "npm-token",
    description: "npm access token",
    hints: ["npm_"],
    pattern: String.raw`{B}npm_[A-Za-z0-9]{36}(?![A-Za-z0-9])`,
  },
  {
    id: "pypi-token",
    description: "PyPI upload token",
    hints: ["pypi-AgEIcHlwaS5vcmc"],
    pattern: String.raw`{B}pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,}`,
  },
  {
    id: "rubygems-key",
    description: "RubyGems API key",
    hints: ["rubygems_"],
    pattern: String.raw`{B}rubygems_[a-f0-9]{48}`,
  },
  {
    id: "docker-hub-pat",
    description: "Docker Hub personal access token",
    hints: ["dckr_pat_"],
    pattern: String.raw`{B}dckr_pat_[A-Za-z0-9_-]{27,}`,
  },
  {
    id: "atlassian-token",
    description: "Atlassian API token",
    hints: ["ATATT3"],
    pattern: String.raw`{B}ATATT3[A-Za-z0-9_=-]{100,}`,
  },
  {
    id: "linear-api-key",
    description: "Linear API key",
    hints: ["lin_api_"],
    pattern: String.raw`{B}lin_api_[A-Za-z0-9]{40}`,
  },
  {
    id: "postman-api-key",
    description: "Postman API key",
    hints: ["pmak-"],
    pattern: String.raw`{B}PMAK-[a-f0-9]{24}-[a-f0-9]{34}`,
    flags: "i",
  },
  {
    id: "grafana-token",
    description: "Grafana cloud and service-account tokens",
    hints: ["glc_", "glsa_"],
    pattern: String.raw`{B}(?:glc_[A-Za-z0-9+/]{32,400}={0,2}|glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8})`,
  },
  {
    id: "sentry-token",
    description: "Sentry user and organisation auth tokens",
    hints: ["sntryu_", "sntrys_"],
    pattern: String.raw`{B}(?:sntryu_[a-f0-9]{64}|sntrys_eyJ[A-Za-z0-9_=+/.-]{30,})`,
  },
  {
    id: "doppler-token",
    description: "Doppler service token",
    hints: ["dp."],
    pattern: String.raw`{B}dp\.(?:pt|st|sa|ct|scim|audit)\.[A-Za-z0-9]{40,}`,
  },
  {
    id: "buildkite-token",
    description: "Buildkite agent and user tokens",
    hints: ["bkua_", "bkct_"],
    pattern: String.raw`{B}bk(?:ua|ct)_[a-f0-9]{40}`,
  },

  // Structured tokens.
  {
    id: "jwt",
    description: "JSON Web Token (header and payload both base64url JSON)",
    hints: ["eyJ"],
    pattern: String.raw`{B}eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}`,
  },

  // Credentials in commands, URLs and headers.
  {
    id: "url-credentials",
    description: "Password in a URL, also with an empty user (https://:token@host)",
    hints: ["://"],
    pattern: String.raw`(\b[a-z][a-z0-9+.-]*://[^\s/:@"'<>]*:)[^\s@/"'<>]+(?=@)`,
    flags: "i",
    keep: true,
  },
  {
    id: "curl-user",
    description: "curl -u / --user user:password",
    hints: ["curl"],
    pattern: String.raw`(\bcurl\b[^\n]*?\s(?:-u\s*|--user[\s=]+)["']?[^\s:"']*:)[^\s"']+`,
    keep: true,
  },
  {
    id: "authorization-header",
    description: "Authorization header value, plain or JSON-quoted",
    hints: ["authorization"],
    pattern: String.raw`(["']?(?:proxy-)?authorization["']?\s*[:=]\s*["']?(?:bearer|token|basic|digest|bot|apikey)?\s*)(?!\[REDACTED\])[A-Za-z0-9._~+/=-]{8,}`,
    flags: "i",
    keep: true,
    skipCode: true,
  },
  {
    id: "api-key-header",
    description: "API-key headers (X-Api-Key, Private-Token, X-Auth-Token...), plain or JSON-quoted",
    hints: ["api-key", "private-token", "x-auth-token", "x-access-token", "job-token"],
    pattern: String.raw`(["']?(?:x-api-key|api-key|x-goog-api-key|private-token|x-auth-token|x-access-token|job-token)["']?\s*[:=]\s*["']?)(?!\[REDACTED\])[A-Za-z0-9._~+/=-]{8,}`,
    flags: "i",
    keep: true,
    skipCode: true,
  },
  {
    id: "generic-assignment",
    description:
      "A high-entropy value assigned to a secret-sounding name (password=, secret:, api_key=, _authToken=...)",
    hints: [
      "passw",
      "pwd",
      "secret",
      "token",
      "apikey",
      "api_key",
      "api-key",
      "access_key",
      "access-key",
      "accesskey",
      "auth_key",
      "auth-key",
      "authkey",
      "private_key",
      "private-key",
      "privatekey",
      "credential",
    ],
    pattern: String.raw`((?<![A-Za-z0-9])[A-Za-z0-9_.-]{0,40}?(?:passw(?:or)?d|passwd|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|auth[_-]?key|private[_-]?key|client[_-]?secret|credentials?)["']?\s*(?::=|=>|:|=)\s*["']?)(?!\[REDACTED\])([^\s"'\x60;,(){}[\]<>$]{8,200})`,
    flags: "i",
    keep: true,
    entropy: 3,
    needsDigit: true,
    skipCode: true,
  },
];
