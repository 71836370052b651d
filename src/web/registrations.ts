import { triggersRegistration } from "../triggers/index.js";
import type { Registration } from "./app.js";

/** Everything the web process serves, in order. Later parts add their registration here. */
export const webRegistrations: Registration[] = [triggersRegistration()];
