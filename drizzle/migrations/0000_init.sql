CREATE TABLE "claims" (
	"key" text PRIMARY KEY NOT NULL,
	"fingerprint" text NOT NULL,
	"status" text NOT NULL,
	"instance_id" text,
	"result" jsonb,
	"error" jsonb,
	"lease_owner" text,
	"lease_until" timestamp with time zone,
	"attempts" integer DEFAULT 0 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "instance_events" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"instance_id" text NOT NULL,
	"event_key" text NOT NULL,
	"from_status" text,
	"to_status" text NOT NULL,
	"actor" text NOT NULL,
	"reason" text NOT NULL,
	"details" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "instance_resources" (
	"instance_id" text NOT NULL,
	"kind" text NOT NULL,
	"provider" text NOT NULL,
	"ref" text NOT NULL,
	"status" text DEFAULT 'active' NOT NULL,
	"metadata" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"released_at" timestamp with time zone,
	CONSTRAINT "instance_resources_instance_id_kind_pk" PRIMARY KEY("instance_id","kind")
);
--> statement-breakpoint
CREATE TABLE "instance_secrets" (
	"instance_id" text NOT NULL,
	"name" text NOT NULL,
	"ciphertext" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "instance_secrets_instance_id_name_pk" PRIMARY KEY("instance_id","name")
);
--> statement-breakpoint
CREATE TABLE "instances" (
	"id" text PRIMARY KEY NOT NULL,
	"pool" text NOT NULL,
	"status" text NOT NULL,
	"seq" integer DEFAULT 0 NOT NULL,
	"provider" text NOT NULL,
	"url" text,
	"agent_name" text,
	"template_slug" text,
	"conversation_id" text,
	"invite_url" text,
	"joined" integer,
	"claim_key" text,
	"reserved_by" text,
	"reserved_until" timestamp with time zone,
	"last_error" text,
	"failed_step" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"idle_at" timestamp with time zone,
	"claimed_at" timestamp with time zone,
	"destroyed_at" timestamp with time zone,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "templates" (
	"slug" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"emoji" text NOT NULL,
	"category" text NOT NULL,
	"description" text NOT NULL,
	"skills" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"instructions" text NOT NULL,
	"catalog_version" integer NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE INDEX "claims_instance_idx" ON "claims" USING btree ("instance_id");--> statement-breakpoint
CREATE UNIQUE INDEX "instance_events_key_idx" ON "instance_events" USING btree ("instance_id","event_key");--> statement-breakpoint
CREATE INDEX "instance_events_at_idx" ON "instance_events" USING btree ("instance_id","at");--> statement-breakpoint
CREATE INDEX "instances_pool_status_idx" ON "instances" USING btree ("pool","status");