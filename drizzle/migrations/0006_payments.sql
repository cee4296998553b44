CREATE TABLE "payments" (
	"id" text PRIMARY KEY NOT NULL,
	"instance_id" text NOT NULL,
	"asset" text NOT NULL,
	"chain" text NOT NULL,
	"amount_micros" bigint NOT NULL,
	"destination" text NOT NULL,
	"status" text NOT NULL,
	"confirm_code_hash" text,
	"confirm_attempts" integer DEFAULT 0 NOT NULL,
	"confirm_expires_at" timestamp with time zone,
	"tx_hash" text,
	"reason" text,
	"created_at" timestamp with time zone NOT NULL,
	"decided_at" timestamp with time zone
);
--> statement-breakpoint
CREATE INDEX "payments_instance_idx" ON "payments" USING btree ("instance_id","created_at");