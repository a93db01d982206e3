-- The schema the migrations build, read from the catalogs by scripts/schema-dump.mjs.
-- Do not edit: run `npm run schema:dump` after changing a migration (docs/database.md).

SEQUENCE llm_usage_id_seq bigint START 1 INCREMENT 1 MIN 1 MAX 9223372036854775807
SEQUENCE migrations_id_seq integer START 1 INCREMENT 1 MIN 1 MAX 2147483647
SEQUENCE node_logs_id_seq bigint START 1 INCREMENT 1 MIN 1 MAX 9223372036854775807
SEQUENCE rollout_nodes_seq_seq bigint START 1 INCREMENT 1 MIN 1 MAX 9223372036854775807
SEQUENCE service_health_checks_id_seq bigint START 1 INCREMENT 1 MIN 1 MAX 9223372036854775807
SEQUENCE service_stat_samples_id_seq bigint START 1 INCREMENT 1 MIN 1 MAX 9223372036854775807
SEQUENCE task_events_id_seq bigint START 1 INCREMENT 1 MIN 1 MAX 9223372036854775807

TABLE agent_connection_peaks
  ROW LEVEL SECURITY FORCED
  tenant_id text NOT NULL
  day date NOT NULL
  peak integer NOT NULL DEFAULT 0
  updated_at timestamp with time zone NOT NULL DEFAULT now()
  CONSTRAINT PK_agent_connection_peaks PRIMARY KEY (tenant_id, day)
  INDEX CREATE UNIQUE INDEX "PK_agent_connection_peaks" ON public.agent_connection_peaks USING btree (tenant_id, day)
  POLICY tenant_isolation PERMISSIVE FOR ALL TO public USING (((( SELECT taskhub_current_tenant() AS taskhub_current_tenant) = '*'::text) OR (tenant_id = ( SELECT taskhub_current_tenant() AS taskhub_current_tenant)))) WITH CHECK (((( SELECT taskhub_current_tenant() AS taskhub_current_tenant) = '*'::text) OR (tenant_id = ( SELECT taskhub_current_tenant() AS taskhub_current_tenant))))

TABLE agent_service_counters
  ROW LEVEL SECURITY FORCED
  service_id uuid NOT NULL
  total_connections bigint NOT NULL DEFAULT 0
  peak_connections integer NOT NULL DEFAULT 0
  completed_sessions bigint NOT NULL DEFAULT 0
  session_seconds double precision NOT NULL DEFAULT 0
  errors bigint NOT NULL DEFAULT 0
  updated_at timestamp with time zone NOT NULL DEFAULT now()
  tenant_id text NOT NULL DEFAULT taskhub_current_tenant_for_insert()
  messages bigint NOT NULL DEFAULT 0
  responses bigint NOT NULL DEFAULT 0
  response_ms_sum double precision NOT NULL DEFAULT 0
  CONSTRAINT FK_agent_service_counters_service FOREIGN KEY (service_id) REFERENCES agent_services(id) ON DELETE CASCADE
  CONSTRAINT FK_agent_service_counters_tenant FOREIGN KEY (tenant_id) REFERENCES tenants(id) ON DELETE CASCADE
  CONSTRAINT PK_agent_service_counters PRIMARY KEY (service_id)
  INDEX CREATE UNIQUE INDEX "PK_agent_service_counters" ON public.agent_service_counters USING btree (service_id)
  TRIGGER CREATE TRIGGER "TRG_agent_service_counters_tenant" BEFORE INSERT ON public.agent_service_counters FOR EACH ROW WHEN ((taskhub_current_tenant() = '*'::text)) EXECUTE FUNCTION taskhub_tenant_from_service()
  POLICY tenant_isolation PERMISSIVE FOR ALL TO public USING (((( SELECT taskhub_current_tenant() AS taskhub_current_tenant) = '*'::text) OR (tenant_id = ( SELECT taskhub_current_tenant() AS taskhub_current_tenant)))) WITH CHECK (((( SELECT taskhub_current_tenant() AS taskhub_current_tenant) = '*'::text) OR (tenant_id = ( SELECT taskhub_current_tenant() AS taskhub_current_tenant))))

TABLE agent_services
  ROW LEVEL SECURITY FORCED
  id uuid NOT NULL DEFAULT gen_random_uuid()
  name text NOT NULL
  description text
  kind text NOT NULL
  agent_factory_path text
  command text
  args text[] NOT NULL DEFAULT '{}'::text[]
  cwd text
  env jsonb NOT NULL DEFAULT '{}'::jsonb
  host text NOT NULL DEFAULT '127.0.0.1'::text
  port integer
  runtime_port integer
  endpoint text
  health_check jsonb NOT NULL DEFAULT '{}'::jsonb
  tags text[] NOT NULL DEFAULT '{}'::text[]
  config jsonb NOT NULL DEFAULT '{}'::jsonb
  weight integer NOT NULL DEFAULT 1
  status text NOT NULL DEFAULT 'stopped'::text
  desired_state text NOT NULL DEFAULT 'stopped'::text
  health_status text NOT NULL DEFAULT 'unknown'::text
  health_checked_at timestamp with time zone
  health_response_ms real
  health_message text
  pid integer
  owner_instance text
  owner_seen_at timestamp with time zone
  restart_count integer NOT NULL DEFAULT 0
  last_exit_code integer
  last_error text
  created_at timestamp with time zone NOT NULL DEFAULT now()
  updated_at timestamp with time zone NOT NULL DEFAULT now()
  started_at timestamp with time zone
  stopped_at timestamp with time zone
  tenant_id text NOT NULL DEFAULT taskhub_current_tenant_for_insert()
  CONSTRAINT CHK_agent_services_desired CHECK ((desired_state = ANY (ARRAY['running'::text, 'stopped'::text])))
  CONSTRAINT CHK_agent_services_health CHECK ((health_status = ANY (ARRAY['healthy'::text, 'unhealthy'::text, 'unknown'::text])))
  CONSTRAINT CHK_agent_services_kind CHECK ((kind = ANY (ARRAY['managed'::text, 'external'::text])))
  CONSTRAINT CHK_agent_services_status CHECK ((status = ANY (ARRAY['stopped'::text, 'starting'::text, 'running'::text, 'stopping'::text, 'error'::text])))
  CONSTRAINT FK_agent_services_tenant FOREIGN KEY (tenant_id) REFERENCES tenants(id) ON DELETE CASCADE
  CONSTRAINT PK_agent_services PRIMARY KEY (id)
  CONSTRAINT UQ_agent_services_tenant_name UNIQUE (tenant_id, name)
  INDEX CREATE INDEX "IDX_agent_services_tags" ON public.agent_services USING gin (tags)
  INDEX CREATE UNIQUE INDEX "PK_agent_services" ON public.agent_services USING btree (id)
  INDEX CREATE UNIQUE INDEX "UQ_agent_services_tenant_name" ON public.agent_services USING btree (tenant_id, name)
  POLICY tenant_isolation PERMISSIVE FOR ALL TO public USING (((( SELECT taskhub_current_tenant() AS taskhub_current_tenant) = '*'::text) OR (tenant_id = ( SELECT taskhub_current_tenant() AS taskhub_current_tenant)))) WITH CHECK (((( SELECT taskhub_current_tenant() AS taskhub_current_tenant) = '*'::text) OR (tenant_id = ( SELECT taskhub_current_tenant() AS taskhub_current_tenant))))

TABLE agent_sessions
  ROW LEVEL SECURITY FORCED
  session_id text NOT NULL
  service_id uuid
  open_connections integer NOT NULL DEFAULT 0
  instance_id text
  started_at timestamp with time zone NOT NULL DEFAULT now()
  ended_at timestamp with time zone
  tenant_id text NOT NULL DEFAULT taskhub_current_tenant_for_insert()
  CONSTRAINT CHK_agent_sessions_open CHECK ((open_connections >= 0))
  CONSTRAINT FK_agent_sessions_service FOREIGN KEY (service_id) REFERENCES agent_services(id) ON DELETE SET NULL
  CONSTRAINT FK_agent_sessions_tenant FOREIGN KEY (tenant_id) REFERENCES tenants(id) ON DELETE CASCADE
  CONSTRAINT PK_agent_sessions PRIMARY KEY (tenant_id, session_id)
  INDEX CREATE INDEX "IDX_agent_sessions_ended" ON public.agent_sessions USING btree (ended_at)
  INDEX CREATE INDEX "IDX_agent_sessions_open" ON public.agent_sessions USING btree (service_id) WHERE (open_connections > 0)
  INDEX CREATE UNIQUE INDEX "PK_agent_sessions" ON public.agent_sessions USING btree (tenant_id, session_id)
  TRIGGER CREATE TRIGGER "TRG_agent_sessions_tenant" BEFORE INSERT ON public.agent_sessions FOR EACH ROW WHEN ((taskhub_current_tenant() = '*'::text)) EXECUTE FUNCTION taskhub_tenant_from_service()
  POLICY tenant_isolation PERMISSIVE FOR ALL TO public USING (((( SELECT taskhub_current_tenant() AS taskhub_current_tenant) = '*'::text) OR (tenant_id = ( SELECT taskhub_current_tenant() AS taskhub_current_tenant)))) WITH CHECK (((( SELECT taskhub_current_tenant() AS taskhub_current_tenant) = '*'::text) OR (tenant_id = ( SELECT taskhub_current_tenant() AS taskhub_current_tenant))))

TABLE api_keys
  ROW LEVEL SECURITY FORCED
  id uuid NOT NULL DEFAULT gen_random_uuid()
  name text NOT NULL
  role text NOT NULL
  key_hash text NOT NULL
  prefix text NOT NULL
  created_at timestamp with time zone NOT NULL DEFAULT now()
  last_used_at timestamp with time zone
  revoked_at timestamp with time zone
  limits jsonb
  roles text[] NOT NULL
  tenant_id text
  CONSTRAINT CHK_api_keys_roles CHECK (((cardinality(roles) >= 1) AND (roles <@ ARRAY['admin'::text, 'client'::text, 'worker'::text]) AND (roles[1] = role)))
  CONSTRAINT FK_api_keys_tenant FOREIGN KEY (tenant_id) REFERENCES tenants(id) ON DELETE CASCADE
  CONSTRAINT PK_api_keys PRIMARY KEY (id)
  CONSTRAINT UQ_api_keys_key_hash UNIQUE (key_hash)
  INDEX CREATE INDEX "IDX_api_keys_tenant" ON public.api_keys USING btree (tenant_id)
  INDEX CREATE UNIQUE INDEX "PK_api_keys" ON public.api_keys USING btree (id)
  INDEX CREATE UNIQUE INDEX "UQ_api_keys_key_hash" ON public.api_keys USING btree (key_hash)
  POLICY tenant_isolation PERMISSIVE FOR ALL TO public USING (((( SELECT taskhub_current_tenant() AS taskhub_current_tenant) = '*'::text) OR (tenant_id = ( SELECT taskhub_current_tenant() AS taskhub_current_tenant)))) WITH CHECK (((( SELECT taskhub_current_tenant() AS taskhub_current_tenant) = '*'::text) OR (tenant_id = ( SELECT taskhub_current_tenant() AS taskhub_current_tenant))))

TABLE concurrency_limits
  ROW LEVEL SECURITY FORCED
  tenant_id text NOT NULL DEFAULT taskhub_current_tenant_for_insert()
  key text NOT NULL
  max_running integer
  max_per_minute integer
  created_at timestamp with time zone NOT NULL DEFAULT now()
  updated_at timestamp with time zone NOT NULL DEFAULT now()
  CONSTRAINT CHK_concurrency_limits_positive CHECK (((COALESCE(max_running, 1) >= 1) AND (COALESCE(max_per_minute, 1) >= 1)))
  CONSTRAINT CHK_concurrency_limits_some CHECK (((max_running IS NOT NULL) OR (max_per_minute IS NOT NULL)))
  CONSTRAINT FK_concurrency_limits_tenant FOREIGN KEY (tenant_id) REFERENCES tenants(id) ON DELETE CASCADE
  CONSTRAINT PK_concurrency_limits PRIMARY KEY (tenant_id, key)
  INDEX CREATE UNIQUE INDEX "PK_concurrency_limits" ON public.concurrency_limits USING btree (tenant_id, key)
  POLICY tenant_isolation PERMISSIVE FOR ALL TO public USING (((( SELECT taskhub_current_tenant() AS taskhub_current_tenant) = '*'::text) OR (tenant_id = ( SELECT taskhub_current_tenant() AS taskhub_current_tenant)))) WITH CHECK (((( SELECT taskhub_current_tenant() AS taskhub_current_tenant) = '*'::text) OR (tenant_id = ( SELECT taskhub_current_tenant() AS taskhub_current_tenant))))

TABLE hub_instances
  id text NOT NULL
  name text NOT NULL
  host text
  pid integer
  started_at timestamp with time zone NOT NULL DEFAULT now()
  last_seen_at timestamp with time zone NOT NULL DEFAULT now()
  CONSTRAINT PK_hub_instances PRIMARY KEY (id)
  INDEX CREATE INDEX "IDX_hub_instances_name" ON public.hub_instances USING btree (name)
  INDEX CREATE UNIQUE INDEX "PK_hub_instances" ON public.hub_instances USING btree (id)

TABLE llm_key_quota
  ROW LEVEL SECURITY FORCED
  key_id uuid NOT NULL
  window_start timestamp with time zone NOT NULL
  window_requests integer NOT NULL DEFAULT 0
  window_tokens bigint NOT NULL DEFAULT 0
  budget_start timestamp with time zone NOT NULL
  budget_tokens bigint NOT NULL DEFAULT 0
  in_flight jsonb NOT NULL DEFAULT '{}'::jsonb
  tenant_id text NOT NULL DEFAULT taskhub_current_tenant_for_insert()
  CONSTRAINT FK_llm_key_quota_key FOREIGN KEY (key_id) REFERENCES api_keys(id) ON DELETE CASCADE
  CONSTRAINT FK_llm_key_quota_tenant FOREIGN KEY (tenant_id) REFERENCES tenants(id) ON DELETE CASCADE
  CONSTRAINT PK_llm_key_quota PRIMARY KEY (key_id)
  INDEX CREATE UNIQUE INDEX "PK_llm_key_quota" ON public.llm_key_quota USING btree (key_id)
  TRIGGER CREATE TRIGGER "TRG_llm_key_quota_tenant" BEFORE INSERT ON public.llm_key_quota FOR EACH ROW WHEN ((taskhub_current_tenant() = '*'::text)) EXECUTE FUNCTION taskhub_tenant_from_key()
  POLICY tenant_isolation PERMISSIVE FOR ALL TO public USING (((( SELECT taskhub_current_tenant() AS taskhub_current_tenant) = '*'::text) OR (tenant_id = ( SELECT taskhub_current_tenant() AS taskhub_current_tenant)))) WITH CHECK (((( SELECT taskhub_current_tenant() AS taskhub_current_tenant) = '*'::text) OR (tenant_id = ( SELECT taskhub_current_tenant() AS taskhub_current_tenant))))

TABLE llm_usage
  ROW LEVEL SECURITY FORCED
  id bigint NOT NULL DEFAULT nextval('llm_usage_id_seq'::regclass)
  request_id text NOT NULL
  key_id uuid
  node_id text
  requested_model text NOT NULL
  model text NOT NULL
  provider text NOT NULL
  status text NOT NULL
  stream boolean NOT NULL
  prompt_tokens integer NOT NULL
  completion_tokens integer NOT NULL
  ttft_ms integer
  duration_ms integer NOT NULL
  upstream_status integer
  error text
  started_at timestamp with time zone NOT NULL
  created_at timestamp with time zone NOT NULL DEFAULT now()
  tenant_id text NOT NULL DEFAULT taskhub_current_tenant_for_insert()
  CONSTRAINT FK_llm_usage_tenant FOREIGN KEY (tenant_id) REFERENCES tenants(id) ON DELETE CASCADE
  CONSTRAINT PK_llm_usage PRIMARY KEY (id)
  INDEX CREATE INDEX "IDX_llm_usage_key_started" ON public.llm_usage USING btree (key_id, started_at)
  INDEX CREATE INDEX "IDX_llm_usage_request" ON public.llm_usage USING btree (request_id)
  INDEX CREATE INDEX "IDX_llm_usage_started" ON public.llm_usage USING btree (started_at)
  INDEX CREATE INDEX "IDX_llm_usage_tenant_started" ON public.llm_usage USING btree (tenant_id, started_at)
  INDEX CREATE UNIQUE INDEX "PK_llm_usage" ON public.llm_usage USING btree (id)
  TRIGGER CREATE TRIGGER "TRG_llm_usage_tenant" BEFORE INSERT ON public.llm_usage FOR EACH ROW WHEN ((taskhub_current_tenant() = '*'::text)) EXECUTE FUNCTION taskhub_tenant_from_key_or_node()
  POLICY tenant_isolation PERMISSIVE FOR ALL TO public USING (((( SELECT taskhub_current_tenant() AS taskhub_current_tenant) = '*'::text) OR (tenant_id = ( SELECT taskhub_current_tenant() AS taskhub_current_tenant)))) WITH CHECK (((( SELECT taskhub_current_tenant() AS taskhub_current_tenant) = '*'::text) OR (tenant_id = ( SELECT taskhub_current_tenant() AS taskhub_current_tenant))))

TABLE migrations
  id integer NOT NULL DEFAULT nextval('migrations_id_seq'::regclass)
  timestamp bigint NOT NULL
  name character varying NOT NULL
  CONSTRAINT PK_8c82d7f526340ab734260ea46be PRIMARY KEY (id)
  INDEX CREATE UNIQUE INDEX "PK_8c82d7f526340ab734260ea46be" ON public.migrations USING btree (id)

TABLE node_logs
  ROW LEVEL SECURITY FORCED
  id bigint NOT NULL DEFAULT nextval('node_logs_id_seq'::regclass)
  node_id text NOT NULL
  task_id uuid
  level text NOT NULL
  message text NOT NULL
  data jsonb
  created_at timestamp with time zone NOT NULL DEFAULT now()
  tenant_id text NOT NULL DEFAULT taskhub_current_tenant_for_insert()
  CONSTRAINT CHK_node_logs_level CHECK ((level = ANY (ARRAY['debug'::text, 'info'::text, 'warn'::text, 'error'::text])))
  CONSTRAINT FK_node_logs_tenant FOREIGN KEY (tenant_id) REFERENCES tenants(id) ON DELETE CASCADE
  CONSTRAINT PK_node_logs PRIMARY KEY (id)
  INDEX CREATE INDEX "IDX_node_logs_node" ON public.node_logs USING btree (node_id, id)
  INDEX CREATE UNIQUE INDEX "PK_node_logs" ON public.node_logs USING btree (id)
  TRIGGER CREATE TRIGGER "TRG_node_logs_tenant" BEFORE INSERT ON public.node_logs FOR EACH ROW WHEN ((taskhub_current_tenant() = '*'::text)) EXECUTE FUNCTION taskhub_tenant_from_node()
  POLICY tenant_isolation PERMISSIVE FOR ALL TO public USING (((( SELECT taskhub_current_tenant() AS taskhub_current_tenant) = '*'::text) OR (tenant_id = ( SELECT taskhub_current_tenant() AS taskhub_current_tenant)))) WITH CHECK (((( SELECT taskhub_current_tenant() AS taskhub_current_tenant) = '*'::text) OR (tenant_id = ( SELECT taskhub_current_tenant() AS taskhub_current_tenant))))

TABLE nodes
  ROW LEVEL SECURITY FORCED
  id text NOT NULL
  name text
  kind text NOT NULL DEFAULT 'device'::text
  vocabulary text NOT NULL DEFAULT 'device'::text
  status text NOT NULL DEFAULT 'offline'::text
  draining boolean NOT NULL DEFAULT false
  capacity integer NOT NULL DEFAULT 1
  tags text[] NOT NULL DEFAULT '{}'::text[]
  capabilities text[] NOT NULL DEFAULT '{}'::text[]
  info jsonb NOT NULL DEFAULT '{}'::jsonb
  version text
  instance_id text
  socket_id text
  registered_at timestamp with time zone NOT NULL DEFAULT now()
  connected_at timestamp with time zone
  last_heartbeat_at timestamp with time zone
  disconnected_at timestamp with time zone
  updated_at timestamp with time zone NOT NULL DEFAULT now()
  acks boolean NOT NULL DEFAULT false
  reported_status text
  resources jsonb
  stats jsonb
  tenant_id text NOT NULL DEFAULT taskhub_current_tenant_for_insert()
  shared boolean NOT NULL DEFAULT false
  CONSTRAINT CHK_nodes_kind CHECK ((kind = ANY (ARRAY['device'::text, 'node'::text, 'worker'::text])))
  CONSTRAINT CHK_nodes_status CHECK ((status = ANY (ARRAY['online'::text, 'offline'::text])))
  CONSTRAINT FK_nodes_tenant FOREIGN KEY (tenant_id) REFERENCES tenants(id) ON DELETE CASCADE
  CONSTRAINT PK_nodes PRIMARY KEY (id)
  INDEX CREATE INDEX "IDX_nodes_instance_online" ON public.nodes USING btree (instance_id) WHERE (status = 'online'::text)
  INDEX CREATE INDEX "IDX_nodes_status" ON public.nodes USING btree (status)
  INDEX CREATE INDEX "IDX_nodes_tenant" ON public.nodes USING btree (tenant_id)
  INDEX CREATE UNIQUE INDEX "PK_nodes" ON public.nodes USING btree (id)
  POLICY tenant_isolation PERMISSIVE FOR ALL TO public USING (((( SELECT taskhub_current_tenant() AS taskhub_current_tenant) = '*'::text) OR (tenant_id = ( SELECT taskhub_current_tenant() AS taskhub_current_tenant)))) WITH CHECK (((( SELECT taskhub_current_tenant() AS taskhub_current_tenant) = '*'::text) OR (tenant_id = ( SELECT taskhub_current_tenant() AS taskhub_current_tenant))))

TABLE plugin_deliveries
  ROW LEVEL SECURITY FORCED
  plugin text NOT NULL
  webhook_id text NOT NULL
  task_id uuid NOT NULL
  received_at timestamp with time zone NOT NULL DEFAULT now()
  tenant_id text NOT NULL DEFAULT taskhub_current_tenant_for_insert()
  CONSTRAINT FK_plugin_deliveries_tenant FOREIGN KEY (tenant_id) REFERENCES tenants(id) ON DELETE CASCADE
  CONSTRAINT PK_plugin_deliveries PRIMARY KEY (tenant_id, plugin, webhook_id)
  INDEX CREATE INDEX "IDX_plugin_deliveries_received" ON public.plugin_deliveries USING btree (received_at)
  INDEX CREATE UNIQUE INDEX "PK_plugin_deliveries" ON public.plugin_deliveries USING btree (tenant_id, plugin, webhook_id)
  TRIGGER CREATE TRIGGER "TRG_plugin_deliveries_tenant" BEFORE INSERT ON public.plugin_deliveries FOR EACH ROW WHEN ((taskhub_current_tenant() = '*'::text)) EXECUTE FUNCTION taskhub_tenant_from_task()
  POLICY tenant_isolation PERMISSIVE FOR ALL TO public USING (((( SELECT taskhub_current_tenant() AS taskhub_current_tenant) = '*'::text) OR (tenant_id = ( SELECT taskhub_current_tenant() AS taskhub_current_tenant)))) WITH CHECK (((( SELECT taskhub_current_tenant() AS taskhub_current_tenant) = '*'::text) OR (tenant_id = ( SELECT taskhub_current_tenant() AS taskhub_current_tenant))))

TABLE plugins
  ROW LEVEL SECURITY FORCED
  id uuid NOT NULL DEFAULT gen_random_uuid()
  name text NOT NULL
  secret text NOT NULL
  token_hash text NOT NULL
  previous_secret text
  previous_token_hash text
  rotated_at timestamp with time zone
  rotated_until timestamp with time zone
  created_at timestamp with time zone NOT NULL DEFAULT now()
  tenant_id text NOT NULL DEFAULT taskhub_current_tenant_for_insert()
  tools jsonb NOT NULL DEFAULT '[]'::jsonb
  CONSTRAINT FK_plugins_tenant FOREIGN KEY (tenant_id) REFERENCES tenants(id) ON DELETE CASCADE
  CONSTRAINT PK_plugins PRIMARY KEY (id)
  INDEX CREATE UNIQUE INDEX "PK_plugins" ON public.plugins USING btree (id)
  INDEX CREATE UNIQUE INDEX "UQ_plugins_tenant_lower_name" ON public.plugins USING btree (tenant_id, lower(name))
  POLICY tenant_isolation PERMISSIVE FOR ALL TO public USING (((( SELECT taskhub_current_tenant() AS taskhub_current_tenant) = '*'::text) OR (tenant_id = ( SELECT taskhub_current_tenant() AS taskhub_current_tenant)))) WITH CHECK (((( SELECT taskhub_current_tenant() AS taskhub_current_tenant) = '*'::text) OR (tenant_id = ( SELECT taskhub_current_tenant() AS taskhub_current_tenant))))

TABLE rollout_nodes
  ROW LEVEL SECURITY FORCED
  rollout_id uuid NOT NULL
  node_id text NOT NULL
  tenant_id text NOT NULL DEFAULT taskhub_current_tenant_for_insert()
  seq bigint NOT NULL DEFAULT nextval('rollout_nodes_seq_seq'::regclass)
  task_id uuid
  released_at timestamp with time zone
  error text
  CONSTRAINT FK_rollout_nodes_rollout FOREIGN KEY (rollout_id) REFERENCES rollouts(id) ON DELETE CASCADE
  CONSTRAINT FK_rollout_nodes_tenant FOREIGN KEY (tenant_id) REFERENCES tenants(id) ON DELETE CASCADE
  CONSTRAINT PK_rollout_nodes PRIMARY KEY (rollout_id, node_id)
  INDEX CREATE INDEX "IDX_rollout_nodes_queued" ON public.rollout_nodes USING btree (rollout_id, seq) WHERE (released_at IS NULL)
  INDEX CREATE UNIQUE INDEX "PK_rollout_nodes" ON public.rollout_nodes USING btree (rollout_id, node_id)
  POLICY tenant_isolation PERMISSIVE FOR ALL TO public USING (((( SELECT taskhub_current_tenant() AS taskhub_current_tenant) = '*'::text) OR (tenant_id = ( SELECT taskhub_current_tenant() AS taskhub_current_tenant)))) WITH CHECK (((( SELECT taskhub_current_tenant() AS taskhub_current_tenant) = '*'::text) OR (tenant_id = ( SELECT taskhub_current_tenant() AS taskhub_current_tenant))))

TABLE rollouts
  ROW LEVEL SECURITY FORCED
  id uuid NOT NULL DEFAULT gen_random_uuid()
  tenant_id text NOT NULL DEFAULT taskhub_current_tenant_for_insert()
  name text NOT NULL
  task jsonb NOT NULL
  target_tags text[] NOT NULL DEFAULT '{}'::text[]
  target_node_ids text[] NOT NULL DEFAULT '{}'::text[]
  rate jsonb
  abort jsonb NOT NULL DEFAULT '[]'::jsonb
  include_future_nodes boolean NOT NULL DEFAULT false
  status text NOT NULL DEFAULT 'in_progress'::text
  queued integer NOT NULL DEFAULT 0
  released integer NOT NULL DEFAULT 0
  next_release_at timestamp with time zone NOT NULL DEFAULT now()
  counts jsonb NOT NULL DEFAULT '{}'::jsonb
  reason text
  created_at timestamp with time zone NOT NULL DEFAULT now()
  updated_at timestamp with time zone NOT NULL DEFAULT now()
  finished_at timestamp with time zone
  CONSTRAINT CHK_rollouts_status CHECK ((status = ANY (ARRAY['in_progress'::text, 'completed'::text, 'aborted'::text, 'cancelled'::text])))
  CONSTRAINT FK_rollouts_tenant FOREIGN KEY (tenant_id) REFERENCES tenants(id) ON DELETE CASCADE
  CONSTRAINT PK_rollouts PRIMARY KEY (id)
  INDEX CREATE INDEX "IDX_rollouts_due" ON public.rollouts USING btree (next_release_at) WHERE ((status = 'in_progress'::text) AND (queued > 0))
  INDEX CREATE INDEX "IDX_rollouts_future" ON public.rollouts USING btree (tenant_id) WHERE ((status = 'in_progress'::text) AND include_future_nodes)
  INDEX CREATE INDEX "IDX_rollouts_tenant_created" ON public.rollouts USING btree (tenant_id, created_at)
  INDEX CREATE UNIQUE INDEX "PK_rollouts" ON public.rollouts USING btree (id)
  POLICY tenant_isolation PERMISSIVE FOR ALL TO public USING (((( SELECT taskhub_current_tenant() AS taskhub_current_tenant) = '*'::text) OR (tenant_id = ( SELECT taskhub_current_tenant() AS taskhub_current_tenant)))) WITH CHECK (((( SELECT taskhub_current_tenant() AS taskhub_current_tenant) = '*'::text) OR (tenant_id = ( SELECT taskhub_current_tenant() AS taskhub_current_tenant))))

TABLE routing_rules
  ROW LEVEL SECURITY FORCED
  id uuid NOT NULL DEFAULT gen_random_uuid()
  name text NOT NULL
  description text
  priority integer NOT NULL DEFAULT 0
  enabled boolean NOT NULL DEFAULT true
  conditions jsonb NOT NULL DEFAULT '[]'::jsonb
  target_strategy text NOT NULL DEFAULT 'least_connections'::text
  target_tags text[] NOT NULL DEFAULT '{}'::text[]
  target_service text
  created_at timestamp with time zone NOT NULL DEFAULT now()
  updated_at timestamp with time zone NOT NULL DEFAULT now()
  tenant_id text NOT NULL DEFAULT taskhub_current_tenant_for_insert()
  CONSTRAINT CHK_routing_rules_strategy CHECK ((target_strategy = ANY (ARRAY['round_robin'::text, 'least_connections'::text, 'random'::text, 'weighted'::text, 'hash'::text])))
  CONSTRAINT FK_routing_rules_tenant FOREIGN KEY (tenant_id) REFERENCES tenants(id) ON DELETE CASCADE
  CONSTRAINT PK_routing_rules PRIMARY KEY (id)
  CONSTRAINT UQ_routing_rules_tenant_name UNIQUE (tenant_id, name)
  INDEX CREATE UNIQUE INDEX "PK_routing_rules" ON public.routing_rules USING btree (id)
  INDEX CREATE UNIQUE INDEX "UQ_routing_rules_tenant_name" ON public.routing_rules USING btree (tenant_id, name)
  POLICY tenant_isolation PERMISSIVE FOR ALL TO public USING (((( SELECT taskhub_current_tenant() AS taskhub_current_tenant) = '*'::text) OR (tenant_id = ( SELECT taskhub_current_tenant() AS taskhub_current_tenant)))) WITH CHECK (((( SELECT taskhub_current_tenant() AS taskhub_current_tenant) = '*'::text) OR (tenant_id = ( SELECT taskhub_current_tenant() AS taskhub_current_tenant))))

TABLE runtime_settings
  key text NOT NULL
  value jsonb NOT NULL
  updated_at timestamp with time zone NOT NULL DEFAULT now()
  updated_by text
  CONSTRAINT PK_runtime_settings PRIMARY KEY (key)
  INDEX CREATE UNIQUE INDEX "PK_runtime_settings" ON public.runtime_settings USING btree (key)

TABLE schedules
  ROW LEVEL SECURITY FORCED
  id uuid NOT NULL DEFAULT gen_random_uuid()
  tenant_id text NOT NULL DEFAULT taskhub_current_tenant_for_insert()
  name text
  cron text
  timezone text NOT NULL DEFAULT 'UTC'::text
  at timestamp with time zone
  task jsonb
  notification jsonb
  enabled boolean NOT NULL DEFAULT true
  next_run_at timestamp with time zone
  last_run_at timestamp with time zone
  last_task_id uuid
  runs integer NOT NULL DEFAULT 0
  last_error text
  created_at timestamp with time zone NOT NULL DEFAULT now()
  updated_at timestamp with time zone NOT NULL DEFAULT now()
  CONSTRAINT CHK_schedules_what CHECK (((task IS NULL) <> (notification IS NULL)))
  CONSTRAINT CHK_schedules_when CHECK (((cron IS NULL) <> (at IS NULL)))
  CONSTRAINT FK_schedules_tenant FOREIGN KEY (tenant_id) REFERENCES tenants(id) ON DELETE CASCADE
  CONSTRAINT PK_schedules PRIMARY KEY (id)
  INDEX CREATE INDEX "IDX_schedules_due" ON public.schedules USING btree (next_run_at) WHERE (enabled AND (next_run_at IS NOT NULL))
  INDEX CREATE INDEX "IDX_schedules_tenant_created" ON public.schedules USING btree (tenant_id, created_at)
  INDEX CREATE UNIQUE INDEX "PK_schedules" ON public.schedules USING btree (id)
  POLICY tenant_isolation PERMISSIVE FOR ALL TO public USING (((( SELECT taskhub_current_tenant() AS taskhub_current_tenant) = '*'::text) OR (tenant_id = ( SELECT taskhub_current_tenant() AS taskhub_current_tenant)))) WITH CHECK (((( SELECT taskhub_current_tenant() AS taskhub_current_tenant) = '*'::text) OR (tenant_id = ( SELECT taskhub_current_tenant() AS taskhub_current_tenant))))

TABLE service_health_checks
  ROW LEVEL SECURITY FORCED
  id bigint NOT NULL DEFAULT nextval('service_health_checks_id_seq'::regclass)
  service_id uuid NOT NULL
  status text NOT NULL
  response_time_ms real
  message text
  checked_at timestamp with time zone NOT NULL DEFAULT now()
  tenant_id text NOT NULL DEFAULT taskhub_current_tenant_for_insert()
  CONSTRAINT FK_service_health_checks_tenant FOREIGN KEY (tenant_id) REFERENCES tenants(id) ON DELETE CASCADE
  CONSTRAINT PK_service_health_checks PRIMARY KEY (id)
  CONSTRAINT service_health_checks_service_id_fkey FOREIGN KEY (service_id) REFERENCES agent_services(id) ON DELETE CASCADE
  INDEX CREATE INDEX "IDX_service_health_checks_service" ON public.service_health_checks USING btree (service_id, checked_at DESC)
  INDEX CREATE UNIQUE INDEX "PK_service_health_checks" ON public.service_health_checks USING btree (id)
  TRIGGER CREATE TRIGGER "TRG_service_health_checks_tenant" BEFORE INSERT ON public.service_health_checks FOR EACH ROW WHEN ((taskhub_current_tenant() = '*'::text)) EXECUTE FUNCTION taskhub_tenant_from_service()
  POLICY tenant_isolation PERMISSIVE FOR ALL TO public USING (((( SELECT taskhub_current_tenant() AS taskhub_current_tenant) = '*'::text) OR (tenant_id = ( SELECT taskhub_current_tenant() AS taskhub_current_tenant)))) WITH CHECK (((( SELECT taskhub_current_tenant() AS taskhub_current_tenant) = '*'::text) OR (tenant_id = ( SELECT taskhub_current_tenant() AS taskhub_current_tenant))))

TABLE service_stat_samples
  ROW LEVEL SECURITY FORCED
  id bigint NOT NULL DEFAULT nextval('service_stat_samples_id_seq'::regclass)
  service_id uuid
  sampled_at timestamp with time zone NOT NULL DEFAULT now()
  connections integer NOT NULL
  sessions integer NOT NULL
  opened integer NOT NULL
  messages integer NOT NULL
  errors integer NOT NULL
  response_time_ms real
  tenant_id text NOT NULL DEFAULT taskhub_current_tenant_for_insert()
  responses integer NOT NULL DEFAULT 0
  response_ms_sum double precision NOT NULL DEFAULT 0
  CONSTRAINT FK_service_stat_samples_tenant FOREIGN KEY (tenant_id) REFERENCES tenants(id) ON DELETE CASCADE
  CONSTRAINT PK_service_stat_samples PRIMARY KEY (id)
  CONSTRAINT service_stat_samples_service_id_fkey FOREIGN KEY (service_id) REFERENCES agent_services(id) ON DELETE CASCADE
  INDEX CREATE INDEX "IDX_service_stat_samples_time" ON public.service_stat_samples USING btree (sampled_at, service_id)
  INDEX CREATE UNIQUE INDEX "PK_service_stat_samples" ON public.service_stat_samples USING btree (id)
  TRIGGER CREATE TRIGGER "TRG_service_stat_samples_tenant" BEFORE INSERT ON public.service_stat_samples FOR EACH ROW WHEN ((taskhub_current_tenant() = '*'::text)) EXECUTE FUNCTION taskhub_tenant_from_service()
  POLICY tenant_isolation PERMISSIVE FOR ALL TO public USING (((( SELECT taskhub_current_tenant() AS taskhub_current_tenant) = '*'::text) OR (tenant_id = ( SELECT taskhub_current_tenant() AS taskhub_current_tenant)))) WITH CHECK (((( SELECT taskhub_current_tenant() AS taskhub_current_tenant) = '*'::text) OR (tenant_id = ( SELECT taskhub_current_tenant() AS taskhub_current_tenant))))

TABLE task_count_deltas
  ROW LEVEL SECURITY FORCED
  tenant_id text NOT NULL
  status text NOT NULL
  priority smallint NOT NULL
  n bigint NOT NULL
  POLICY tenant_isolation PERMISSIVE FOR ALL TO public USING (((( SELECT taskhub_current_tenant() AS taskhub_current_tenant) = '*'::text) OR (tenant_id = ( SELECT taskhub_current_tenant() AS taskhub_current_tenant)))) WITH CHECK (((( SELECT taskhub_current_tenant() AS taskhub_current_tenant) = '*'::text) OR (tenant_id = ( SELECT taskhub_current_tenant() AS taskhub_current_tenant))))

TABLE task_counts
  ROW LEVEL SECURITY FORCED
  tenant_id text NOT NULL
  status text NOT NULL
  priority smallint NOT NULL
  n bigint NOT NULL
  CONSTRAINT PK_task_counts PRIMARY KEY (tenant_id, status, priority)
  INDEX CREATE UNIQUE INDEX "PK_task_counts" ON public.task_counts USING btree (tenant_id, status, priority)
  POLICY tenant_isolation PERMISSIVE FOR ALL TO public USING (((( SELECT taskhub_current_tenant() AS taskhub_current_tenant) = '*'::text) OR (tenant_id = ( SELECT taskhub_current_tenant() AS taskhub_current_tenant)))) WITH CHECK (((( SELECT taskhub_current_tenant() AS taskhub_current_tenant) = '*'::text) OR (tenant_id = ( SELECT taskhub_current_tenant() AS taskhub_current_tenant))))

TABLE task_events
  ROW LEVEL SECURITY FORCED
  id bigint NOT NULL GENERATED BY DEFAULT AS IDENTITY
  task_id uuid NOT NULL
  at timestamp with time zone NOT NULL DEFAULT now()
  type text NOT NULL
  level text NOT NULL DEFAULT 'info'::text
  message text NOT NULL
  attempt integer NOT NULL DEFAULT 0
  data jsonb
  tenant_id text NOT NULL DEFAULT taskhub_context_tenant()
  CONSTRAINT FK_task_events_task FOREIGN KEY (task_id) REFERENCES tasks(id) ON DELETE CASCADE
  CONSTRAINT FK_task_events_tenant FOREIGN KEY (tenant_id) REFERENCES tenants(id) ON DELETE CASCADE
  CONSTRAINT PK_task_events PRIMARY KEY (id)
  INDEX CREATE INDEX "IDX_task_events_task" ON public.task_events USING btree (task_id, id)
  INDEX CREATE UNIQUE INDEX "PK_task_events" ON public.task_events USING btree (id)
  TRIGGER CREATE TRIGGER "TRG_task_events_tenant" BEFORE INSERT ON public.task_events FOR EACH ROW WHEN ((new.tenant_id IS NULL)) EXECUTE FUNCTION taskhub_tenant_from_task()
  POLICY tenant_isolation PERMISSIVE FOR ALL TO public USING (((( SELECT taskhub_current_tenant() AS taskhub_current_tenant) = '*'::text) OR (tenant_id = ( SELECT taskhub_current_tenant() AS taskhub_current_tenant)))) WITH CHECK (((( SELECT taskhub_current_tenant() AS taskhub_current_tenant) = '*'::text) OR (tenant_id = ( SELECT taskhub_current_tenant() AS taskhub_current_tenant))))

TABLE task_finish_deltas
  ROW LEVEL SECURITY FORCED
  tenant_id text NOT NULL
  minute timestamp with time zone NOT NULL
  status text NOT NULL
  node_id text
  n bigint NOT NULL
  run_ms bigint NOT NULL
  runs bigint NOT NULL
  POLICY tenant_isolation PERMISSIVE FOR ALL TO public USING (((( SELECT taskhub_current_tenant() AS taskhub_current_tenant) = '*'::text) OR (tenant_id = ( SELECT taskhub_current_tenant() AS taskhub_current_tenant)))) WITH CHECK (((( SELECT taskhub_current_tenant() AS taskhub_current_tenant) = '*'::text) OR (tenant_id = ( SELECT taskhub_current_tenant() AS taskhub_current_tenant))))

TABLE task_finish_minutes
  ROW LEVEL SECURITY FORCED
  tenant_id text NOT NULL
  minute timestamp with time zone NOT NULL
  completed bigint NOT NULL DEFAULT 0
  failed bigint NOT NULL DEFAULT 0
  cancelled bigint NOT NULL DEFAULT 0
  timed_out bigint NOT NULL DEFAULT 0
  run_ms bigint NOT NULL DEFAULT 0
  runs bigint NOT NULL DEFAULT 0
  CONSTRAINT PK_task_finish_minutes PRIMARY KEY (tenant_id, minute)
  INDEX CREATE INDEX "IDX_task_finish_minutes_minute" ON public.task_finish_minutes USING btree (minute)
  INDEX CREATE UNIQUE INDEX "PK_task_finish_minutes" ON public.task_finish_minutes USING btree (tenant_id, minute)
  POLICY tenant_isolation PERMISSIVE FOR ALL TO public USING (((( SELECT taskhub_current_tenant() AS taskhub_current_tenant) = '*'::text) OR (tenant_id = ( SELECT taskhub_current_tenant() AS taskhub_current_tenant)))) WITH CHECK (((( SELECT taskhub_current_tenant() AS taskhub_current_tenant) = '*'::text) OR (tenant_id = ( SELECT taskhub_current_tenant() AS taskhub_current_tenant))))

TABLE task_node_finishes
  ROW LEVEL SECURITY FORCED
  tenant_id text NOT NULL
  node_id text NOT NULL
  completed bigint NOT NULL DEFAULT 0
  failed bigint NOT NULL DEFAULT 0
  cancelled bigint NOT NULL DEFAULT 0
  timed_out bigint NOT NULL DEFAULT 0
  CONSTRAINT PK_task_node_finishes PRIMARY KEY (node_id, tenant_id)
  INDEX CREATE UNIQUE INDEX "PK_task_node_finishes" ON public.task_node_finishes USING btree (node_id, tenant_id)
  POLICY tenant_isolation PERMISSIVE FOR ALL TO public USING (((( SELECT taskhub_current_tenant() AS taskhub_current_tenant) = '*'::text) OR (tenant_id = ( SELECT taskhub_current_tenant() AS taskhub_current_tenant)))) WITH CHECK (((( SELECT taskhub_current_tenant() AS taskhub_current_tenant) = '*'::text) OR (tenant_id = ( SELECT taskhub_current_tenant() AS taskhub_current_tenant))))

TABLE tasks
  ROW LEVEL SECURITY FORCED
  id uuid NOT NULL DEFAULT gen_random_uuid()
  type text NOT NULL DEFAULT 'prompt'::text
  prompt text
  data jsonb
  priority smallint NOT NULL DEFAULT 1
  tags text[] NOT NULL DEFAULT '{}'::text[]
  work_directory text
  environment text
  files jsonb
  status text NOT NULL DEFAULT 'pending'::text
  target_node_id text
  node_id text
  worker_id text
  attempt integer NOT NULL DEFAULT 0
  retry_count integer NOT NULL DEFAULT 0
  max_retries integer NOT NULL DEFAULT 3
  timeout_seconds integer NOT NULL DEFAULT 1800
  run_at timestamp with time zone NOT NULL DEFAULT now()
  lease_expires_at timestamp with time zone
  progress real NOT NULL DEFAULT 0
  progress_message text
  result jsonb
  error jsonb
  messages jsonb NOT NULL DEFAULT '[]'::jsonb
  idempotency_key text
  metadata jsonb NOT NULL DEFAULT '{}'::jsonb
  created_at timestamp with time zone NOT NULL DEFAULT now()
  updated_at timestamp with time zone NOT NULL DEFAULT now()
  dispatched_at timestamp with time zone
  started_at timestamp with time zone
  completed_at timestamp with time zone
  cancelled_at timestamp with time zone
  last_retry_at timestamp with time zone
  cancel_reason text
  required_tags text[] NOT NULL DEFAULT '{}'::text[]
  delivery_count smallint NOT NULL DEFAULT 0
  delivered_at timestamp with time zone
  awaits_callback text
  tenant_id text NOT NULL DEFAULT taskhub_current_tenant_for_insert()
  tag_key text NOT NULL DEFAULT ''::text
  traceparent text
  tracestate text
  concurrency_key text
  CONSTRAINT CHK_tasks_status CHECK ((status = ANY (ARRAY['pending'::text, 'dispatched'::text, 'running'::text, 'completed'::text, 'failed'::text, 'cancelled'::text, 'timed_out'::text])))
  CONSTRAINT FK_tasks_tenant FOREIGN KEY (tenant_id) REFERENCES tenants(id) ON DELETE CASCADE
  CONSTRAINT PK_tasks PRIMARY KEY (id)
  INDEX CREATE INDEX "IDX_tasks_completed_type" ON public.tasks USING btree (type, completed_at DESC) INCLUDE (started_at) WHERE (status = 'completed'::text)
  INDEX CREATE INDEX "IDX_tasks_concurrency_starts" ON public.tasks USING btree (tenant_id, concurrency_key, dispatched_at) WHERE ((concurrency_key IS NOT NULL) AND (dispatched_at IS NOT NULL))
  INDEX CREATE INDEX "IDX_tasks_concurrency_unfinished" ON public.tasks USING btree (tenant_id, concurrency_key, status) WHERE ((concurrency_key IS NOT NULL) AND (status = ANY (ARRAY['pending'::text, 'dispatched'::text, 'running'::text])))
  INDEX CREATE INDEX "IDX_tasks_dispatched_delivered" ON public.tasks USING btree (delivered_at) WHERE (status = 'dispatched'::text)
  INDEX CREATE INDEX "IDX_tasks_finished" ON public.tasks USING btree (tenant_id, COALESCE(GREATEST(completed_at, cancelled_at), created_at), id) WHERE (status = ANY (ARRAY['completed'::text, 'failed'::text, 'cancelled'::text, 'timed_out'::text]))
  INDEX CREATE INDEX "IDX_tasks_lease" ON public.tasks USING btree (lease_expires_at) WHERE (status = ANY (ARRAY['dispatched'::text, 'running'::text]))
  INDEX CREATE INDEX "IDX_tasks_list_completed" ON public.tasks USING btree (tenant_id, status, completed_at, id) WHERE (completed_at IS NOT NULL)
  INDEX CREATE INDEX "IDX_tasks_list_created" ON public.tasks USING btree (tenant_id, status, created_at, id)
  INDEX CREATE INDEX "IDX_tasks_list_priority" ON public.tasks USING btree (tenant_id, status, priority, id)
  INDEX CREATE INDEX "IDX_tasks_list_started" ON public.tasks USING btree (tenant_id, status, started_at, id) WHERE (started_at IS NOT NULL)
  INDEX CREATE INDEX "IDX_tasks_list_uncompleted" ON public.tasks USING btree (tenant_id, status, id) WHERE (completed_at IS NULL)
  INDEX CREATE INDEX "IDX_tasks_list_unstarted" ON public.tasks USING btree (tenant_id, status, id) WHERE (started_at IS NULL)
  INDEX CREATE INDEX "IDX_tasks_node_held" ON public.tasks USING btree (node_id) WHERE (status = ANY (ARRAY['dispatched'::text, 'running'::text]))
  INDEX CREATE INDEX "IDX_tasks_pending_run_at" ON public.tasks USING btree (run_at) WHERE (status = 'pending'::text)
  INDEX CREATE INDEX "IDX_tasks_ready" ON public.tasks USING btree (priority DESC, created_at, id) WHERE (status = 'pending'::text)
  INDEX CREATE INDEX "IDX_tasks_ready_queue" ON public.tasks USING btree (tenant_id, tag_key, type, priority DESC, created_at, id) WHERE ((status = 'pending'::text) AND (target_node_id IS NULL))
  INDEX CREATE INDEX "IDX_tasks_ready_target" ON public.tasks USING btree (target_node_id, tenant_id, priority DESC, created_at, id) WHERE ((status = 'pending'::text) AND (target_node_id IS NOT NULL))
  INDEX CREATE UNIQUE INDEX "PK_tasks" ON public.tasks USING btree (id)
  INDEX CREATE UNIQUE INDEX "UQ_tasks_idempotency_key" ON public.tasks USING btree (tenant_id, idempotency_key) WHERE (idempotency_key IS NOT NULL)
  TRIGGER CREATE TRIGGER tasks_counts_delete AFTER DELETE ON public.tasks REFERENCING OLD TABLE AS old_tasks FOR EACH STATEMENT EXECUTE FUNCTION taskhub_task_counts_delete()
  TRIGGER CREATE TRIGGER tasks_counts_insert AFTER INSERT ON public.tasks REFERENCING NEW TABLE AS new_tasks FOR EACH STATEMENT EXECUTE FUNCTION taskhub_task_counts_insert()
  TRIGGER CREATE TRIGGER tasks_counts_truncate AFTER TRUNCATE ON public.tasks FOR EACH STATEMENT EXECUTE FUNCTION taskhub_task_counts_truncate()
  TRIGGER CREATE TRIGGER tasks_counts_update AFTER UPDATE ON public.tasks REFERENCING OLD TABLE AS old_tasks NEW TABLE AS new_tasks FOR EACH STATEMENT EXECUTE FUNCTION taskhub_task_counts_update()
  TRIGGER CREATE TRIGGER tasks_tag_key BEFORE INSERT OR UPDATE OF required_tags ON public.tasks FOR EACH ROW EXECUTE FUNCTION taskhub_tasks_tag_key()
  POLICY tenant_isolation PERMISSIVE FOR ALL TO public USING (((( SELECT taskhub_current_tenant() AS taskhub_current_tenant) = '*'::text) OR (tenant_id = ( SELECT taskhub_current_tenant() AS taskhub_current_tenant)))) WITH CHECK (((( SELECT taskhub_current_tenant() AS taskhub_current_tenant) = '*'::text) OR (tenant_id = ( SELECT taskhub_current_tenant() AS taskhub_current_tenant))))

TABLE tenants
  ROW LEVEL SECURITY FORCED
  id text NOT NULL
  name text NOT NULL
  limits jsonb NOT NULL DEFAULT '{}'::jsonb
  created_at timestamp with time zone NOT NULL DEFAULT now()
  CONSTRAINT PK_tenants PRIMARY KEY (id)
  CONSTRAINT UQ_tenants_name UNIQUE (name)
  INDEX CREATE UNIQUE INDEX "PK_tenants" ON public.tenants USING btree (id)
  INDEX CREATE UNIQUE INDEX "UQ_tenants_name" ON public.tenants USING btree (name)
  POLICY tenant_isolation PERMISSIVE FOR ALL TO public USING (((( SELECT taskhub_current_tenant() AS taskhub_current_tenant) = '*'::text) OR (id = ( SELECT taskhub_current_tenant() AS taskhub_current_tenant)))) WITH CHECK ((( SELECT taskhub_current_tenant() AS taskhub_current_tenant) = '*'::text))

FUNCTION taskhub_context_tenant()
CREATE OR REPLACE FUNCTION public.taskhub_context_tenant()
 RETURNS text
 LANGUAGE sql
 STABLE
AS $function$ SELECT NULLIF(NULLIF(current_setting('taskhub.tenant_id', true), '*'), '') $function$

FUNCTION taskhub_current_tenant()
CREATE OR REPLACE FUNCTION public.taskhub_current_tenant()
 RETURNS text
 LANGUAGE sql
 STABLE
AS $function$ SELECT current_setting('taskhub.tenant_id', true) $function$

FUNCTION taskhub_current_tenant_for_insert()
CREATE OR REPLACE FUNCTION public.taskhub_current_tenant_for_insert()
 RETURNS text
 LANGUAGE sql
 STABLE
AS $function$ SELECT CASE current_setting('taskhub.tenant_id', true)
                     WHEN '*' THEN 'default' WHEN '' THEN NULL
                     ELSE current_setting('taskhub.tenant_id', true) END $function$

FUNCTION taskhub_fold_task_counts()
CREATE OR REPLACE FUNCTION public.taskhub_fold_task_counts()
 RETURNS bigint
 LANGUAGE plpgsql
AS $function$
      DECLARE folded bigint := 0; more bigint;
      BEGIN
        IF NOT pg_try_advisory_xact_lock(hashtext('taskhub_fold_task_counts')) THEN RETURN 0; END IF;
        WITH d AS (DELETE FROM task_count_deltas RETURNING tenant_id, status, priority, n)
        INSERT INTO task_counts AS c (tenant_id, status, priority, n)
          SELECT tenant_id, status, priority, sum(n) FROM d GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        ON CONFLICT (tenant_id, status, priority) DO UPDATE SET n = c.n + EXCLUDED.n;
        GET DIAGNOSTICS folded = ROW_COUNT;
        WITH d AS (DELETE FROM task_finish_deltas RETURNING *),
        minutes AS (
          INSERT INTO task_finish_minutes AS m (tenant_id, minute, completed, failed, cancelled, timed_out, run_ms, runs)
            SELECT tenant_id, minute,
                   COALESCE(sum(n) FILTER (WHERE status = 'completed'), 0),
                   COALESCE(sum(n) FILTER (WHERE status = 'failed'), 0),
                   COALESCE(sum(n) FILTER (WHERE status = 'cancelled'), 0),
                   COALESCE(sum(n) FILTER (WHERE status = 'timed_out'), 0),
                   sum(run_ms), sum(runs)
              FROM d GROUP BY 1, 2 ORDER BY 1, 2
          ON CONFLICT (tenant_id, minute) DO UPDATE SET
            completed = m.completed + EXCLUDED.completed, failed = m.failed + EXCLUDED.failed,
            cancelled = m.cancelled + EXCLUDED.cancelled, timed_out = m.timed_out + EXCLUDED.timed_out,
            run_ms = m.run_ms + EXCLUDED.run_ms, runs = m.runs + EXCLUDED.runs
          RETURNING 1
        )
        INSERT INTO task_node_finishes AS f (tenant_id, node_id, completed, failed, cancelled, timed_out)
          SELECT tenant_id, node_id,
                 COALESCE(sum(n) FILTER (WHERE status = 'completed'), 0),
                 COALESCE(sum(n) FILTER (WHERE status = 'failed'), 0),
                 COALESCE(sum(n) FILTER (WHERE status = 'cancelled'), 0),
                 COALESCE(sum(n) FILTER (WHERE status = 'timed_out'), 0)
            FROM d WHERE node_id IS NOT NULL GROUP BY 1, 2 ORDER BY 2, 1
        ON CONFLICT (node_id, tenant_id) DO UPDATE SET
          completed = f.completed + EXCLUDED.completed, failed = f.failed + EXCLUDED.failed,
          cancelled = f.cancelled + EXCLUDED.cancelled, timed_out = f.timed_out + EXCLUDED.timed_out;
        GET DIAGNOSTICS more = ROW_COUNT; -- finish rows by node; by minute is about as many
        DELETE FROM task_counts WHERE n = 0;
        RETURN folded + more;
      END $function$

FUNCTION taskhub_task_counts_delete()
CREATE OR REPLACE FUNCTION public.taskhub_task_counts_delete()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
      BEGIN
        INSERT INTO task_count_deltas (tenant_id, status, priority, n)
          SELECT tenant_id, status, priority, -count(*) FROM old_tasks GROUP BY 1, 2, 3;
        RETURN NULL;
      END $function$

FUNCTION taskhub_task_counts_insert()
CREATE OR REPLACE FUNCTION public.taskhub_task_counts_insert()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
      BEGIN
        INSERT INTO task_count_deltas (tenant_id, status, priority, n)
          SELECT tenant_id, status, priority, count(*) FROM new_tasks GROUP BY 1, 2, 3;
        INSERT INTO task_finish_deltas (tenant_id, minute, status, node_id, n, run_ms, runs)
   SELECT f.tenant_id, date_trunc('minute', COALESCE(f.completed_at, f.cancelled_at, f.updated_at)), f.status, f.node_id, count(*), COALESCE(sum(CASE WHEN f.status = 'completed' AND f.started_at IS NOT NULL AND f.completed_at IS NOT NULL
        THEN (extract(epoch FROM f.completed_at - f.started_at) * 1000)::bigint END), 0), count(CASE WHEN f.status = 'completed' AND f.started_at IS NOT NULL AND f.completed_at IS NOT NULL
        THEN (extract(epoch FROM f.completed_at - f.started_at) * 1000)::bigint END)
     FROM new_tasks f WHERE f.status IN ('completed', 'failed', 'cancelled', 'timed_out') AND true GROUP BY 1, 2, 3, 4;
        RETURN NULL;
      END $function$

FUNCTION taskhub_task_counts_truncate()
CREATE OR REPLACE FUNCTION public.taskhub_task_counts_truncate()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
      BEGIN
        TRUNCATE task_count_deltas, task_counts, task_finish_deltas, task_finish_minutes, task_node_finishes;
        RETURN NULL;
      END $function$

FUNCTION taskhub_task_counts_update()
CREATE OR REPLACE FUNCTION public.taskhub_task_counts_update()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
      BEGIN
        WITH moved AS MATERIALIZED (
          SELECT o.tenant_id AS was_tenant, o.status AS was_status, o.priority AS was_priority, t.*
            FROM old_tasks o JOIN new_tasks t USING (id)
           WHERE (o.status, o.priority, o.tenant_id) IS DISTINCT FROM (t.status, t.priority, t.tenant_id)
        ), counted AS (
          INSERT INTO task_count_deltas (tenant_id, status, priority, n)
          SELECT tenant_id, status, priority, sum(n) FROM (
            SELECT was_tenant AS tenant_id, was_status AS status, was_priority AS priority, -1 AS n FROM moved
            UNION ALL
            SELECT tenant_id, status, priority, 1 FROM moved
          ) d GROUP BY 1, 2, 3 HAVING sum(n) <> 0
        )
        INSERT INTO task_finish_deltas (tenant_id, minute, status, node_id, n, run_ms, runs)
   SELECT f.tenant_id, date_trunc('minute', COALESCE(f.completed_at, f.cancelled_at, f.updated_at)), f.status, f.node_id, count(*), COALESCE(sum(CASE WHEN f.status = 'completed' AND f.started_at IS NOT NULL AND f.completed_at IS NOT NULL
        THEN (extract(epoch FROM f.completed_at - f.started_at) * 1000)::bigint END), 0), count(CASE WHEN f.status = 'completed' AND f.started_at IS NOT NULL AND f.completed_at IS NOT NULL
        THEN (extract(epoch FROM f.completed_at - f.started_at) * 1000)::bigint END)
     FROM moved f WHERE f.status IN ('completed', 'failed', 'cancelled', 'timed_out') AND f.was_status IS DISTINCT FROM f.status GROUP BY 1, 2, 3, 4;
        RETURN NULL;
      END $function$

FUNCTION taskhub_tasks_tag_key()
CREATE OR REPLACE FUNCTION public.taskhub_tasks_tag_key()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
       BEGIN
         NEW.tag_key := CASE WHEN cardinality(NEW.required_tags) = 0 THEN ''
           ELSE array_to_string(ARRAY(SELECT DISTINCT u COLLATE "C" FROM unnest(NEW.required_tags) u ORDER BY 1), E'\x1f') END;
         RETURN NEW;
       END $function$

FUNCTION taskhub_tenant_from_key()
CREATE OR REPLACE FUNCTION public.taskhub_tenant_from_key()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
        BEGIN
          NEW.tenant_id := COALESCE((SELECT tenant_id FROM api_keys WHERE id = NEW.key_id), NEW.tenant_id);
          RETURN NEW;
        END $function$

FUNCTION taskhub_tenant_from_key_or_node()
CREATE OR REPLACE FUNCTION public.taskhub_tenant_from_key_or_node()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
        BEGIN
          NEW.tenant_id := COALESCE(COALESCE((SELECT tenant_id FROM api_keys WHERE id = NEW.key_id), (SELECT tenant_id FROM nodes WHERE id = NEW.node_id)), NEW.tenant_id);
          RETURN NEW;
        END $function$

FUNCTION taskhub_tenant_from_node()
CREATE OR REPLACE FUNCTION public.taskhub_tenant_from_node()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
        BEGIN
          NEW.tenant_id := COALESCE((SELECT tenant_id FROM nodes WHERE id = NEW.node_id), NEW.tenant_id);
          RETURN NEW;
        END $function$

FUNCTION taskhub_tenant_from_service()
CREATE OR REPLACE FUNCTION public.taskhub_tenant_from_service()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
        BEGIN
          NEW.tenant_id := COALESCE((SELECT tenant_id FROM agent_services WHERE id = NEW.service_id), NEW.tenant_id);
          RETURN NEW;
        END $function$

FUNCTION taskhub_tenant_from_task()
CREATE OR REPLACE FUNCTION public.taskhub_tenant_from_task()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
        BEGIN
          NEW.tenant_id := COALESCE((SELECT tenant_id FROM tasks WHERE id = NEW.task_id), NEW.tenant_id);
          RETURN NEW;
        END $function$
