CREATE TABLE "phone_numbers" (
	"phone_number" text PRIMARY KEY NOT NULL,
	"provider_id" text NOT NULL,
	"status" text DEFAULT 'available' NOT NULL,
	"instance_id" text,
	"ordered_at" timestamp with time zone DEFAULT now() NOT NULL,
	"assigned_at" timestamp with time zone,
	"released_at" timestamp with time zone,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE INDEX "phone_numbers_status_idx" ON "phone_numbers" USING btree ("status");--> statement-breakpoint
CREATE UNIQUE INDEX "phone_numbers_instance_idx" ON "phone_numbers" USING btree ("instance_id") WHERE status = 'assigned';