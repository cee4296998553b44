ALTER TABLE "claims" ADD COLUMN "client_id" text;--> statement-breakpoint
ALTER TABLE "claims" ADD COLUMN "anonymous" boolean DEFAULT false NOT NULL;--> statement-breakpoint
CREATE INDEX "claims_anonymous_idx" ON "claims" USING btree ("created_at") WHERE anonymous;--> statement-breakpoint
ALTER TABLE "instances" DROP COLUMN "invite_url";