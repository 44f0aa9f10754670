/**
 * Types computed from the events map and the event schemas, so that a typo in an event, model or action
 * name fails to compile and payloads are checked against their schema. Every one of them widens to
 * `string` / `unknown` when the map is not a literal (loaded from JSON, say), so such code keeps compiling.
 * @module
 */
import type { SchemaInput, StandardSchemaV1 } from './standard-schema.js';

/** The `'Model.action'` of one events-map target, without its `+`. */
type RouteOf<Target> = Target extends `${infer Model}.${infer Action}` ? `${Model}.${Action extends `${infer Bare}+` ? Bare : Action}` : never;

/** Every `'Model.action'` an events map routes: `'Book.created' | 'Book.read'`. */
export type RoutedPairs<Events> = { [Name in keyof Events]: RouteOf<Events[Name]> }[keyof Events];

/** The models of routed pairs. */
export type ModelOf<Pairs extends string> = Pairs extends `${infer Model}.${string}` ? Model : never;

/** The actions routed for `Model` (any action when the pairs are not literal). */
export type ActionOf<Pairs extends string, Model extends string> = Pairs extends `${infer M}.${infer Action}` ? (M extends Model ? Action : Model extends M ? Action : never) : never;

/** An optional Standard Schema per declared event. */
export type EventSchemas<EventName extends string = string> = { readonly [Name in EventName]?: StandardSchemaV1 };

/** The payload type each event's schema accepts. */
export type PayloadsOf<Schemas> = { [Name in keyof Schemas]: Schemas[Name] extends StandardSchemaV1 ? SchemaInput<Schemas[Name]> : unknown };

/** The payload of event `Name`: its schema's input type, or `unknown` without a schema. */
export type PayloadOf<Payloads, Name extends string> = Payloads extends { readonly [Key in Name]: infer Payload } ? Payload : unknown;

type EventsOfModel<Events, Model extends string> = { [Name in keyof Events]: Events[Name] extends `${Model}.${string}` ? Name : never }[keyof Events];
type Intersection<Union> = (Union extends unknown ? (value: Union) => void : never) extends (value: infer All) => void ? All : never;

/** What a model's serializer must return: data valid for every event of that model with a schema. */
export type ModelData<Events, Payloads, Model extends string> = Intersection<EachPayload<Payloads, EventsOfModel<Events, Model>>>;
type EachPayload<Payloads, Name> = Name extends string ? PayloadOf<Payloads, Name> : never;
