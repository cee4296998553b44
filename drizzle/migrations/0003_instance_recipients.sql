CREATE TABLE "instance_recipients" (
	"instance_id" text NOT NULL,
	"channel" text NOT NULL,
	"address" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "instance_recipients_instance_id_channel_address_pk" PRIMARY KEY("instance_id","channel","address")
);
