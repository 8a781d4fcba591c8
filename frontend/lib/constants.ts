import type { Stage, Status } from "@/lib/api/client";

export const STATUSES: Status[] = ["uploaded", "processing", "review", "finalised", "rejected", "failed"];
export const STAGES: Stage[] = ["validate", "extract", "analyze", "categorize"];
// The pipeline's default taxonomy; the category filter also accepts any other value typed in.
export const CATEGORIES = ["invoice", "receipt", "contract", "resume", "letter", "report", "academic_paper", "form", "other"];
